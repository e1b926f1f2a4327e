"""Turn an :class:`~cluster.sim.result.EvalResult` into the report an analyst reads or mails.

:func:`write_report` writes three things into one folder: ``report.md`` (plots referenced as the PNG files
beside it), ``report.html`` (the same content with every plot embedded as base64, so the one file can be
mailed) and the PNG plots. Plots are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas: no
pyplot, no global backend switch, no display. Every plot copes with empty inputs (no alerts, no plate
cameras, NaN latencies) by drawing an empty axes with a "no data" note.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter
from pydantic import BaseModel

from cluster.sim.result import EvalResult

DASH = "–"
SIZE_EDGES = [-math.inf, 20, 40, 80, 160, math.inf]
SIZE_LABELS = ["<20", "20–40", "40–80", "80–160", "≥160"]
MISSED_ROWS = 30  # missed recognisable sightings listed, largest apparent size first
FALSE_ROWS = 100  # false alerts listed, in stream order
FRAME_BARS = 60  # cameras in the per-camera frames plot (most frames decoded)
TIMELINE_LANES = 40  # cameras in the timeline (most alerts and listed passes)
TRUE_C, FALSE_C, LISTED_C, UNLISTED_C = "#27ae60", "#c0392b", "#e67e22", "#b2bec3"


class ReportFiles(BaseModel):
    """Paths of what :func:`write_report` wrote."""

    markdown: str
    html: str
    plots: list[str]


@dataclass(frozen=True)
class Highlight:
    """A table cell to flag (a privacy failure): bold with a warning sign in markdown, red in HTML."""

    text: str


# ---------------------------------------------------------------------------------------------- formatting


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float | np.floating) and math.isnan(v))


def fmt_cell(v: Any) -> str:
    """One table value as text: None/NaN as "–", bools as yes/no, ints with thousands separators.

    Callers pre-format what needs a unit or precision (percentages, ids, times) and pass strings.
    """
    if _missing(v):
        return DASH
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        x = float(v)
        return f"{x:,.2f}" if abs(x) >= 1 or x == 0 else f"{x:.3g}"
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, default=str, ensure_ascii=False)
    return str(v)


def _pct(v: Any) -> str:
    return DASH if _missing(v) else f"{100 * float(v):.1f}%"


def _num(v: Any, digits: int) -> str:
    return DASH if _missing(v) else f"{float(v):,.{digits}f}"


def _id(v: Any) -> str:
    return DASH if _missing(v) else str(v)


def _ms(v: Any) -> str:
    return DASH if _missing(v) else (f"{float(v):,.0f} ms" if abs(float(v)) >= 10 else f"{float(v):.1f} ms")


def _hms(seconds: Any) -> str:
    """Seconds since midnight as HH:MM:SS (hours past 24 kept, so a run past midnight stays ordered)."""
    if _missing(seconds):
        return DASH
    s = round(float(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _md_escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "\\<").replace(">", "\\>")
            .replace("\n", " "))


def markdown_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A GitHub-flavoured markdown table of ``rows``; ``columns`` are ``(key, header)`` pairs in order.

    Values go through :func:`fmt_cell` (None/NaN become "–") and are escaped so a ``|`` or ``<`` in an id
    cannot break the table or inject HTML; a :class:`Highlight` value is shown bold with a warning sign.
    """

    def cell(v: Any) -> str:
        return f"**⚠ {_md_escape(v.text)}**" if isinstance(v, Highlight) else _md_escape(fmt_cell(v))

    lines = ["| " + " | ".join(_md_escape(h) for _, h in columns) + " |",
             "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines)


def html_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """The HTML twin of :func:`markdown_table`: every value escaped, :class:`Highlight` cells get class alarm."""

    def cell(v: Any) -> str:
        if isinstance(v, Highlight):
            return f'<td class="alarm">⚠ {html.escape(v.text)}</td>'
        return f"<td>{html.escape(fmt_cell(v))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in columns)
    body = "\n".join("<tr>" + "".join(cell(r.get(k)) for k, _ in columns) + "</tr>" for r in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


# ------------------------------------------------------------------------------------------------ columns


def _bools(s: pd.Series) -> pd.Series:
    return s.astype("boolean").fillna(False).astype(bool)


def _played(s: pd.DataFrame) -> pd.DataFrame:
    """The sightings the rendered cameras showed whole (all of them when the table does not say): passes
    that were never streamed cannot be detected and would drag every share down."""
    return s[_bools(s["played"])] if "played" in s else s


def _nums(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype(float)


def _strs(s: pd.Series) -> pd.Series:
    return s.map(_id).astype(object)


def _sighting_kind(s: pd.DataFrame) -> pd.Series:
    """The alert kind a sighting is expected to raise: vehicles are read by plate, pedestrians by face."""
    return pd.Series(np.where(_strs(s["agent_kind"]) == "vehicle", "plate", "face"), index=s.index)


# -------------------------------------------------------------------------------------------------- plots


def _figure(width: float = 7.5, height: float = 3.8) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _no_data(fig: Figure, ax: Axes, why: str) -> Figure:
    ax.text(0.5, 0.5, f"no data: {why}", ha="center", va="center", transform=ax.transAxes, color="0.45")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def _annotate(ax: Axes, x: float, y: float, text: str) -> None:
    ax.annotate(text, (x, y), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=7)


def plot_recall_by_size(result: EvalResult) -> Figure:
    """Share of listed passes detected per apparent-size bin, one bar series per camera kind.

    Shows where recognition falls off with distance; each bar is annotated detected/passes.
    """
    fig, ax = _figure()
    ax.set_title("Recall by apparent size (listed passes streamed)")
    s = _played(result.sightings)
    listed = s[_bools(s["listed"])]
    bins = pd.cut(_nums(listed["max_px"]), SIZE_EDGES, right=False, labels=SIZE_LABELS)
    if listed.empty or bins.isna().all():
        return _no_data(fig, ax, "no listed passes with a size")
    det, camera_kind = _bools(listed["detected"]), _strs(listed["camera_kind"])
    kinds = sorted(set(camera_kind))
    width, x0 = 0.8 / len(kinds), np.arange(len(SIZE_LABELS))
    for i, kind in enumerate(kinds):
        sel = camera_kind == kind
        g = (pd.DataFrame({"bin": bins[sel], "det": det[sel]}).groupby("bin", observed=False)["det"]
             .agg(["sum", "count"]).reindex(SIZE_LABELS, fill_value=0))
        share = (g["sum"] / g["count"].replace(0, np.nan)).to_numpy(float)
        x = x0 + (i - (len(kinds) - 1) / 2) * width
        ax.bar(x, np.nan_to_num(share), width, label=kind)
        for xi, sh, d, n in zip(x, share, g["sum"], g["count"], strict=True):
            if n:
                _annotate(ax, xi, sh, f"{int(d)}/{int(n)}")
    ax.set_xticks(x0, SIZE_LABELS)
    ax.set_xlabel("largest face height / plate width over the pass (px)")
    ax.set_ylabel("share detected")
    ax.set_ylim(0, 1.15)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(title="camera", fontsize=8)
    return fig


def plot_recall_day_night(result: EvalResult) -> Figure:
    """Recall (detected / recognisable listed passes) by day and by night for each alert kind."""
    fig, ax = _figure(6.0, 3.6)
    ax.set_title("Recall by day and night (recognisable listed passes streamed)")
    s = _played(result.sightings)
    rec = s[_bools(s["listed"]) & _bools(s["recognisable"])]
    if rec.empty:
        return _no_data(fig, ax, "no recognisable listed passes")
    kind, night, det = _sighting_kind(rec), _bools(rec["night"]), _bools(rec["detected"])
    kinds = list(dict.fromkeys([m.kind for m in result.metrics if (kind == m.kind).any()] + sorted(set(kind))))
    x0 = np.arange(len(kinds))
    for offset, is_night, label, color in ((-0.2, False, "day", "#f2b134"), (0.2, True, "night", "#34495e")):
        for xi, k in zip(x0, kinds, strict=True):
            sel = (kind == k) & (night == is_night)
            n, d = int(sel.sum()), int(det[sel].sum())
            ax.bar(xi + offset, d / n if n else 0, 0.4, color=color, label=label if xi == 0 else None)
            if n:
                _annotate(ax, xi + offset, d / n, f"{d}/{n}")
    ax.set_xticks(x0, kinds)
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1.15)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=8)
    return fig


def plot_latency(result: EvalResult) -> Figure:
    """Empirical CDF of alert latency (frame decoded -> alert written) with p50 and p99 marked."""
    fig, ax = _figure(6.5, 3.6)
    ax.set_title("Alert latency")
    lat = _nums(result.alerts["latency_ms"]).to_numpy()
    x = np.sort(lat[np.isfinite(lat)])
    if not x.size:
        return _no_data(fig, ax, "no alert latencies")
    ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", label=f"{x.size} alerts")
    for name, given, q, color in (("p50", result.latency_p50_ms, 50, "#2e86de"),
                                  ("p99", result.latency_p99_ms, 99, "#c0392b")):
        v = float(np.percentile(x, q)) if _missing(given) else float(given)
        ax.axvline(v, ls="--", color=color, label=f"{name} = {_ms(v)}")
    if x[0] > 0 and x[-1] / x[0] > 50:
        ax.set_xscale("log")
    ax.set_xlabel("frame decoded → alert written (ms)")
    ax.set_ylabel("share of alerts")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_camera_frames(result: EvalResult) -> Figure:
    """Frames decoded per camera, stacked as skipped by the motion gate / processed / dropped."""
    c = result.cameras
    cols = ("decoded", "gate_skipped", "processed", "dropped")
    df = pd.DataFrame({"camera": _strs(c["camera_id"]), **{k: _nums(c[k]).fillna(0) for k in cols}})
    capped = len(df) > FRAME_BARS
    df = (df.nlargest(FRAME_BARS, "decoded") if capped else df).sort_values("camera")
    fig, ax = _figure(min(max(7.5, 0.22 * len(df) + 2.5), 20), 4.2)
    ax.set_title("Frames per camera" + (f" ({FRAME_BARS} of {len(c)} with most decoded)" if capped else ""))
    if df.empty:
        return _no_data(fig, ax, "no rendered cameras")
    x, bottom = np.arange(len(df)), np.zeros(len(df))
    for key, label, color in (("gate_skipped", "skipped by motion gate", "#bdc3c7"),
                              ("processed", "processed", "#2e86de"), ("dropped", "dropped", FALSE_C)):
        ax.bar(x, df[key], 0.8, bottom=bottom, label=label, color=color)
        bottom += df[key].to_numpy()
    ax.scatter(x, df["decoded"], marker="_", s=120, color="k", label="decoded", zorder=3)
    ax.set_xticks(x, df["camera"], rotation=90, fontsize=7)
    ax.set_ylabel("frames")
    ax.legend(fontsize=8)
    return fig


def plot_alerts_by_hour(result: EvalResult) -> Figure:
    """Alerts per hour of the simulated day (from ``pts``), true and false stacked."""
    fig, ax = _figure(7.5, 3.4)
    ax.set_title("Alerts by hour of the simulated day")
    a = result.alerts
    pts = _nums(a["pts"])
    ok = pts.notna().to_numpy()
    if not ok.any():
        return _no_data(fig, ax, "no alerts")
    hour = (pts[ok] // 3600).astype(int).to_numpy() % 24
    true = _bools(a["true"]).to_numpy()[ok]
    n_true, n_false = np.bincount(hour[true], minlength=24), np.bincount(hour[~true], minlength=24)
    ax.bar(range(24), n_true, color=TRUE_C, label="true")
    ax.bar(range(24), n_false, bottom=n_true, color=FALSE_C, label="false")
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlim(-0.6, 23.6)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("hour")
    ax.set_ylabel("alerts")
    ax.legend(fontsize=8)
    return fig


def _timeline_lanes(result: EvalResult) -> tuple[list[str], int]:
    """Cameras to draw, busiest first then by id, and how many there were in all."""
    s, a = _played(result.sightings), result.alerts
    ids = [*_strs(result.cameras["camera_id"]), *_strs(s["camera_id"]), *_strs(a["camera_id"])]
    cams = [c for c in dict.fromkeys(ids) if c != DASH]
    score = (_strs(a["camera_id"]).value_counts() * 1000 + _strs(s["camera_id"][_bools(s["listed"])])
             .value_counts() * 10).add(_strs(s["camera_id"]).value_counts(), fill_value=0)
    busiest = sorted(cams, key=lambda c: (-score.get(c, 0), c))[:TIMELINE_LANES]
    return sorted(busiest), len(cams)


def plot_timeline(result: EvalResult) -> Figure:
    """One lane per rendered camera over stream time: passes as segments, alerts as markers.

    Listed and unlisted passes get different colours, true and false alerts different markers just above
    their lane, so a missed pass (listed segment without a marker) or a false alert stands out at a glance.
    """
    lanes, total = _timeline_lanes(result)
    fig, ax = _figure(9.0, max(2.6, 1.3 + 0.3 * len(lanes)))
    ax.set_title("Timeline per camera" + (f" ({len(lanes)} busiest of {total})" if total > len(lanes) else ""))
    s, a = _played(result.sightings), result.alerts
    lane = {c: i for i, c in enumerate(lanes)}
    s_y, a_y = _strs(s["camera_id"]).map(lane), _strs(a["camera_id"]).map(lane)
    t_in, t_out, pts = _nums(s["t_in"]) / 3600, _nums(s["t_out"]) / 3600, _nums(a["pts"]) / 3600
    seg_ok, alert_ok = (s_y.notna() & t_in.notna()).to_numpy(), (a_y.notna() & pts.notna()).to_numpy()
    if not lanes or not (seg_ok.any() or alert_ok.any()):
        return _no_data(fig, ax, "no passes or alerts")
    listed, true = _bools(s["listed"]).to_numpy(), _bools(a["true"]).to_numpy()
    times = np.concatenate([t_in[seg_ok], t_out[seg_ok].dropna(), pts[alert_ok]])
    min_w = max(float(times.max() - times.min()), 1.0) * 0.006  # a pass of seconds is still seen on a day axis
    end = np.maximum(t_out.fillna(t_in), t_in + min_w)
    for flag, color, lw in ((False, UNLISTED_C, 5), (True, LISTED_C, 8)):
        m = seg_ok & (listed == flag)
        if m.any():
            ax.hlines(s_y[m].to_numpy(), t_in[m].to_numpy(), end[m].to_numpy(), colors=color, lw=lw)
    for flag, color, marker in ((True, TRUE_C, "o"), (False, FALSE_C, "x")):
        m = alert_ok & (true == flag)
        if m.any():
            ax.scatter(pts[m].to_numpy(), a_y[m].to_numpy() - 0.3, marker=marker, color=color, s=30, zorder=3,
                       facecolors="none" if marker == "o" else None)
    ax.set_yticks(range(len(lanes)), lanes, fontsize=7)
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    ax.set_xlabel("stream time (hour of the simulated day)")
    ax.legend(handles=[Line2D([], [], color=LISTED_C, lw=5, label="listed pass"),
                       Line2D([], [], color=UNLISTED_C, lw=4, label="unlisted pass"),
                       Line2D([], [], color=TRUE_C, marker="o", ls="", mfc="none", label="true alert"),
                       Line2D([], [], color=FALSE_C, marker="x", ls="", label="false alert")],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


PLOTS: list[tuple[str, str, Callable[[EvalResult], Figure]]] = [
    ("recall_by_size.png", "Recall by apparent size: share of the streamed listed passes detected per size bin "
     "(annotated detected/passes), per camera kind.", plot_recall_by_size),
    ("recall_day_night.png", "Recall by day and night for each alert kind (annotated detected/recognisable).",
     plot_recall_day_night),
    ("alert_latency.png", "Alert latency, empirical CDF, with p50 and p99 marked.", plot_latency),
    ("camera_frames.png", "Frames decoded per camera, split into skipped by the motion gate, processed and "
     "dropped.", plot_camera_frames),
    ("alerts_by_hour.png", "Alerts by hour of the simulated day, true and false stacked.", plot_alerts_by_hour),
    ("timeline.png", "Timeline per camera: passes (listed/unlisted) and alerts (true/false) over stream time.",
     plot_timeline),
]


# ------------------------------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class _Heading:
    level: int
    text: str


@dataclass(frozen=True)
class _Para:
    text: str
    alarm: bool = False


@dataclass(frozen=True)
class _Table:
    rows: list[dict[str, Any]]
    columns: list[tuple[str, str]]


@dataclass(frozen=True)
class _Image:
    name: str
    caption: str
    png: bytes


_Block = _Heading | _Para | _Table | _Image

HEADLINE_COLUMNS = [
    ("kind", "kind"), ("listed", "listed passes"), ("recognisable", "recognisable"), ("detected", "detected"),
    ("recall", "recall"), ("recall_all", "recall (all listed)"), ("alerts", "alerts"), ("true", "true"),
    ("false", "false"), ("precision", "precision"), ("fpch", "false / camera-hour"),
    ("unlisted", "unlisted passes alerted"),
]


def _headline(result: EvalResult) -> list[_Block]:
    rows = []
    for m in result.metrics:
        unlisted = f"{m.unlisted_alerted:,} of {m.unlisted_sightings:,}"
        rows.append({"kind": m.kind, "listed": m.listed_sightings, "recognisable": m.recognisable,
                     "detected": m.detected, "recall": _pct(m.recall), "recall_all": _pct(m.recall_all),
                     "alerts": m.alerts, "true": m.true_alerts, "false": m.false_alerts,
                     "precision": _pct(m.precision), "fpch": _num(m.false_per_camera_hour, 2),
                     "unlisted": Highlight(unlisted) if m.unlisted_alerted > 0 else unlisted})
    leaks = sum(m.unlisted_alerted for m in result.metrics)
    privacy = (f"⚠ Privacy check FAILED: {leaks:,} pass{'es' if leaks != 1 else ''} of people or vehicles on "
               "no list raised an alert." if leaks
               else "Privacy check passed: no pass of an unlisted person or vehicle raised an alert.")
    return [_Heading(2, "Headline"), _Table(rows, HEADLINE_COLUMNS) if rows else _Para("No alert kinds measured."),
            _Para("recall = recognisable listed passes detected / recognisable; recall (all listed) = listed "
                  "passes with a true alert / all listed passes; precision = true alerts / alerts."),
            _Para(privacy, alarm=leaks > 0)]


def _latency_and_frames(result: EvalResult) -> list[_Block]:
    n_lat = int(np.isfinite(_nums(result.alerts["latency_ms"])).sum())
    decoded = result.frames_decoded

    def share(n: int) -> str:
        return _pct(n / decoded) if decoded else DASH

    rows = [{"stage": "decoded", "frames": decoded, "share": share(decoded)},
            {"stage": "skipped by motion gate", "frames": result.frames_gate_skipped,
             "share": share(result.frames_gate_skipped)},
            {"stage": "processed", "frames": result.frames_processed, "share": share(result.frames_processed)},
            {"stage": "dropped", "frames": result.frames_dropped, "share": share(result.frames_dropped)}]
    rate = _num(result.frames_processed / result.wall_s, 1) if result.wall_s > 0 else DASH
    return [_Heading(2, "Latency"),
            _Para(f"Frame decoded → alert written: p50 {_ms(result.latency_p50_ms)}, "
                  f"p99 {_ms(result.latency_p99_ms)} ({n_lat:,} alerts with a latency)."),
            _Heading(2, "Frames"), _Table(rows, [("stage", "stage"), ("frames", "frames"),
                                                 ("share", "share of decoded")]),
            _Para(f"Motion gate skip ratio: {share(result.frames_gate_skipped)} of decoded frames; "
                  f"{rate} frames processed per wall-clock second over {_num(result.wall_s, 1)} s.")]


def _scenario(result: EvalResult) -> list[_Block]:
    rows = [{"fact": str(k), "value": v} for k, v in result.scenario.items()]
    return [_Heading(2, "Scenario"),
            _Table(rows, [("fact", "fact"), ("value", "value")]) if rows else _Para("No scenario facts recorded.")]


MISSED_COLUMNS = [("sighting", "sighting"), ("camera", "camera"), ("subject", "subject"), ("hour", "hour"),
                  ("night", "night"), ("max_px", "max px"), ("min_dist_m", "min dist (m)")]
FALSE_COLUMNS = [("alert", "alert"), ("camera", "camera"), ("kind", "kind"), ("subject", "subject"),
                 ("pts", "time"), ("score", "score")]


def missed_sightings(result: EvalResult) -> pd.DataFrame:
    """Recognisable passes of listed subjects without a true alert, largest apparent size first.

    The largest misses come first because they are the ones recognition should not have lost.
    """
    s = _played(result.sightings)
    missed = s[_bools(s["listed"]) & _bools(s["recognisable"]) & ~_bools(s["detected"])]
    return missed.assign(_px=_nums(missed["max_px"])).sort_values("_px", ascending=False, kind="stable",
                                                                  na_position="last").drop(columns="_px")


def false_alerts(result: EvalResult) -> pd.DataFrame:
    """Alerts that matched no sighting of their subject at that camera and time, in stream order."""
    a = result.alerts
    wrong = a[~_bools(a["true"])]
    return wrong.assign(_t=_nums(wrong["pts"])).sort_values("_t", kind="stable").drop(columns="_t")


def _tables(result: EvalResult) -> list[_Block]:
    missed, wrong = missed_sightings(result), false_alerts(result)
    blocks: list[_Block] = [_Heading(2, f"Missed recognisable sightings ({len(missed):,})")]
    if missed.empty:
        blocks.append(_Para("None: every recognisable pass of a listed subject raised a true alert."))
    else:
        if len(missed) > MISSED_ROWS:
            blocks.append(_Para(f"The {MISSED_ROWS} largest (by apparent size) of {len(missed):,} are listed."))
        blocks.append(_Table([{"sighting": _id(r.sighting_id), "camera": _id(r.camera_id),
                               "subject": _id(r.subject_id), "hour": _num(r.hour, 0),
                               "night": None if _missing(r.night) else bool(r.night), "max_px": _num(r.max_px, 1),
                               "min_dist_m": _num(r.min_dist_m, 1)}
                              for r in missed.head(MISSED_ROWS).itertuples(index=False)], MISSED_COLUMNS))
    blocks.append(_Heading(2, f"False alerts ({len(wrong):,})"))
    if wrong.empty:
        blocks.append(_Para("None: every alert matched a pass of its subject."))
    else:
        if len(wrong) > FALSE_ROWS:
            blocks.append(_Para(f"The first {FALSE_ROWS} of {len(wrong):,} in stream order are listed."))
        blocks.append(_Table([{"alert": _id(r.alert_id), "camera": _id(r.camera_id), "kind": _id(r.kind),
                               "subject": _id(r.subject_id), "pts": _hms(r.pts), "score": _num(r.score, 3)}
                              for r in wrong.head(FALSE_ROWS).itertuples(index=False)], FALSE_COLUMNS))
    return blocks


# ---------------------------------------------------------------------------------------------- rendering

CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}table{border-collapse:collapse;margin:.6em 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
.alarm{background:#fdecea;color:#b00020;font-weight:bold}figure{margin:1.2em 0}
img{max-width:100%}figcaption{color:#555;font-size:.9em}"""


def _render_markdown(blocks: list[_Block]) -> str:
    out = []
    for b in blocks:
        match b:
            case _Heading(level, text):
                out.append(f"{'#' * level} {_md_escape(text)}")
            case _Para(text, alarm):
                out.append(f"**{_md_escape(text)}**" if alarm else _md_escape(text))
            case _Table(rows, columns):
                out.append(markdown_table(rows, columns))
            case _Image(name, caption, _):
                out.append(f"![{_md_escape(caption)}]({name})")
    return "\n\n".join(out) + "\n"


def _render_html(blocks: list[_Block], title: str) -> str:
    out = []
    for b in blocks:
        match b:
            case _Heading(level, text):
                out.append(f"<h{level}>{html.escape(text)}</h{level}>")
            case _Para(text, alarm):
                out.append(f'<p class="alarm">{html.escape(text)}</p>' if alarm else f"<p>{html.escape(text)}</p>")
            case _Table(rows, columns):
                out.append(html_table(rows, columns))
            case _Image(_, caption, png):
                data = base64.b64encode(png).decode("ascii")
                out.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}'
            f"</title>\n<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(out) + "\n</body>\n</html>\n")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def write_report(result: EvalResult, out_dir: Path | str, *, generated: datetime | None = None) -> ReportFiles:
    """Write ``report.md``, a self-contained ``report.html`` and the PNG plots into ``out_dir``.

    The markdown links the PNGs by relative name (keep the folder together); the HTML embeds them as
    base64 so the one file can be mailed. ``generated`` stamps the title (now, local time, by default).
    Returns the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = (generated or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z").strip()
    title = f"Evaluation report: {result.city}"
    images: list[_Image] = []
    for name, caption, plot in PLOTS:
        png = _png(plot(result))
        (out / name).write_bytes(png)
        images.append(_Image(name, caption, png))
    blocks: list[_Block] = [
        _Heading(1, title),
        _Para(f"City {result.city} · seed {result.seed} · generated {stamp} · run wall time "
              f"{_num(result.wall_s, 1)} s"),
        *_headline(result), *_latency_and_frames(result), *_scenario(result),
        _Heading(2, "Plots"), *images, *_tables(result)]
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(_render_markdown(blocks), encoding="utf-8")
    html_path.write_text(_render_html(blocks, title), encoding="utf-8")
    return ReportFiles(markdown=str(md_path), html=str(html_path), plots=[str(out / name) for name, _, _ in PLOTS])
