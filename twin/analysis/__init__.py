"""Analyses police analysts are asked for every week, on the twin's layers (usable without the CLI).

- :mod:`twin.analysis.compstat`: counts by kind and zone over the last 28 days vs the previous 28 days and
  the same period last year (CompStat).
- :mod:`twin.analysis.hotspots`: when (hour of day x day of week) and where (kernel density in projected
  metres) incidents concentrate, and how well the risk model predicts them (PAI, PEI).
- :mod:`twin.analysis.nearrepeat`: the Knox test for near-repeat victimisation, with a Monte Carlo p-value.
- :mod:`twin.analysis.patrols`: patrol dwell at hot spots against the Koper window, and QR round compliance.
- :mod:`twin.analysis.alertreview`: alert precision by camera and kind from operators' decisions and reasons.
- :mod:`twin.analysis.kpis`: People Poll KPIs per community and month against the programme's targets.

Every function takes plain pandas frames with the twin's column names (see :mod:`twin.schemas`); times are
tz-aware UTC and are read in local time (Asia/Bangkok) where a calendar is involved.
"""

LOCAL_TZ = "Asia/Bangkok"

THAI_FONTS = ("Loma", "Garuda", "Noto Sans Thai", "Sarabun", "Arundina Sans", "Norasi")


def use_thai_font() -> str | None:
    """Let matplotlib draw Thai labels: add the first installed Thai font (Debian ``fonts-thai-tlwg`` gives Loma)
    after DejaVu Sans as a fallback family. Returns the font used, or None when no Thai font is installed."""
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    thai = next((f for f in THAI_FONTS if f in have), None)
    if thai is not None:
        plt.rcParams["font.family"] = ["DejaVu Sans", thai]
    return thai
