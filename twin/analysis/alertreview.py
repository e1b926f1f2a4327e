"""Alert review: how often operators confirm what each camera and each kind of alert raises, and why they
dismiss the rest.

Operators decide every alert in the CCOC: ``status`` goes from ``new`` to ``confirmed`` or ``dismissed``, with
who (``status_by``), when (``status_ts``) and, for the console of issue #15, a reason code
(``status_reason``: e.g. ``wrong-person``, ``look-alike-plate``, ``test``, ``duplicate``) - the fields of the
``alerts`` layer in :mod:`twin.schemas`. Precision is ``confirmed / (confirmed + dismissed)`` over decided
alerts; alerts still ``new`` are counted as pending, never as either. Each precision carries a 95 % Wilson
score interval (``statsmodels.stats.proportion.proportion_confint``), because a camera with 3 decided alerts
says little; :func:`cameras_to_check` only flags cameras with enough decisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DECIDED = ("confirmed", "dismissed")
NO_REASON = "(no reason recorded)"


def review(alerts: pd.DataFrame, by: Sequence[str] = ("camera_id", "kind")) -> pd.DataFrame:
    """Decisions and precision per group.

    Parameters
    ----------
    alerts
        The ``alerts`` layer: ``status`` and the ``by`` columns; ``ts``/``status_ts`` give the decision time;
        ``status_reason`` the reasons.
    by
        Grouping columns (``camera_id``, ``kind``, both, or ``[]`` for one overall row, there even with no
        alert). No alert gives an empty table with these columns.

    Returns
    -------
    pandas.DataFrame
        ``alerts``, ``pending``, ``confirmed``, ``dismissed``, ``precision`` (0..1, NaN with no decision),
        ``ci_low``/``ci_high`` (95 % Wilson interval), ``top_dismiss_reason``, ``minutes_to_decide``
        (median from ``ts`` to ``status_ts`` over confirmed and dismissed alerts), sorted by precision (lowest
        first), then by decided alerts.
    """
    from statsmodels.stats.proportion import proportion_confint

    bad = sorted(set(alerts["status"].dropna()) - {"new", "acknowledged", *DECIDED})
    if bad:
        raise ValueError(f"unknown alert status {bad}: the alerts layer allows new, acknowledged, confirmed, "
                         "dismissed")
    a = alerts.assign(_all="all", alerts=1, pending=alerts["status"].isin(("new", "acknowledged")).astype(int),
                      confirmed=(alerts["status"] == "confirmed").astype(int),
                      dismissed=(alerts["status"] == "dismissed").astype(int))
    keys = list(by) or ["_all"]
    out = a.groupby(keys, observed=True)[["alerts", "pending", "confirmed", "dismissed"]].sum()
    if not by:
        out = out.reindex(pd.Index(["all"], name="_all"), fill_value=0)  # one overall row, even with no alert
    decided = out["confirmed"] + out["dismissed"]
    out["precision"] = (out["confirmed"] / decided.replace(0, np.nan)).round(3)
    lo, hi = proportion_confint(out["confirmed"].to_numpy(), np.maximum(decided.to_numpy(), 1), alpha=0.05,
                                method="wilson")
    out["ci_low"] = np.where(decided > 0, np.round(lo, 3), np.nan)
    out["ci_high"] = np.where(decided > 0, np.round(hi, 3), np.nan)
    dis = a[a["status"] == "dismissed"]
    if len(dis):
        reason = dis["status_reason"].fillna(NO_REASON) if "status_reason" in dis else pd.Series(NO_REASON,
                                                                                                 index=dis.index)
        top = dis.assign(_r=reason).groupby(keys, observed=True)["_r"].agg(lambda s: s.value_counts().index[0])
        out["top_dismiss_reason"] = top.reindex(out.index)
    else:
        out["top_dismiss_reason"] = None
    if "status_ts" in a and "ts" in a:
        # an acknowledged alert's status_ts is when an operator took it, not a decision: decided alerts only
        d = a[a["status"].isin(DECIDED)]
        mins = (pd.to_datetime(d["status_ts"], utc=True) - pd.to_datetime(d["ts"], utc=True)).dt.total_seconds() / 60
        out["minutes_to_decide"] = d.assign(_m=mins).groupby(keys, observed=True)["_m"].median().round(1)
    out = out.assign(_d=decided).sort_values(["precision", "_d"], ascending=[True, False], na_position="last")
    return out.drop(columns="_d")


def reasons(alerts: pd.DataFrame, by: str = "camera_id") -> pd.DataFrame:
    """Dismissed alerts per ``by`` value (rows) and reason (columns), most frequent reasons first."""
    dis = alerts[alerts["status"] == "dismissed"]
    r = dis["status_reason"].fillna(NO_REASON) if "status_reason" in dis else pd.Series(NO_REASON, index=dis.index)
    tab = pd.crosstab(dis[by], r)
    return tab[tab.sum().sort_values(ascending=False).index]


def cameras_to_check(rev: pd.DataFrame, min_decided: int = 10, max_precision: float = 0.5) -> pd.DataFrame:
    """Groups of :func:`review` whose whole 95 % interval lies below ``max_precision`` (so the low precision is
    not chance) among those with at least ``min_decided`` decisions."""
    decided = rev["confirmed"] + rev["dismissed"]
    return rev[(decided >= min_decided) & (rev["ci_high"] < max_precision)]
