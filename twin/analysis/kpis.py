"""People Poll KPIs: fear of crime and confidence in police per community and month, against the targets.

The Smart Safety Zone 4.0 programme judges a zone by its monthly People Poll: fear of crime below 40 % and
confidence in police above 80 %. A poll of ``n`` respondents measures a share ``p`` with a 95 % margin of
error ``1.96 × sqrt(p (1 − p) / n)`` (normal approximation, simple random sample). So a community is said to
*meet* a target only when the whole margin is on the right side, *miss* it when the whole margin is on the
wrong side, and is *too close to call* otherwise. The zone row ("all communities") weights each community
by its respondents.

The survey comes from a file through the one field-input reader: :func:`read_survey`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from twin.fieldinput import ReadResult, read_table

ALL = "all communities"


@dataclass(frozen=True)
class Target:
    """A programme target: the value must be below (``<``) or above (``>``) ``value`` percent."""

    op: Literal["<", ">"]
    value: float
    label: str


TARGETS: dict[str, Target] = {
    "fear_of_crime_pct": Target("<", 40.0, "fear of crime below 40%"),
    "confidence_in_police_pct": Target(">", 80.0, "confidence in police above 80%"),
}


def read_survey(path: str | Path, **kwargs: object) -> ReadResult:
    """A People Poll file (CSV in any Thai encoding, or .xlsx) read and checked by :func:`twin.fieldinput.read_table`
    as ``survey_results`` (community, month, respondents, fear %, confidence %; Thai headers accepted)."""
    return read_table(path, "survey_results", **kwargs)  # type: ignore[arg-type]


def margin_pct(p_pct: np.ndarray | pd.Series, n: np.ndarray | pd.Series) -> np.ndarray:
    """95 % margin of error (percentage points) of a share ``p_pct`` (percent) from ``n`` respondents."""
    p = np.asarray(p_pct, float) / 100.0
    return 1.96 * np.sqrt(p * (1 - p) / np.asarray(n, float)) * 100.0


def verdict(value: np.ndarray, moe: np.ndarray, target: Target) -> np.ndarray:
    """``met`` / ``missed`` / ``too close`` for each value ± margin against a target."""
    v, m = np.asarray(value, float), np.asarray(moe, float)
    if target.op == "<":
        return np.where(v + m < target.value, "met", np.where(v - m >= target.value, "missed", "too close"))
    return np.where(v - m > target.value, "met", np.where(v + m <= target.value, "missed", "too close"))


def _weighted(s: pd.DataFrame, w: str = "respondents") -> pd.DataFrame:
    """Per month: the respondent-weighted mean of each KPI over the communities in ``s``."""
    g = s.assign(**{k: s[k] * s[w] for k in TARGETS}).groupby("month")
    out = g[[w, *TARGETS]].sum()
    for k in TARGETS:
        out[k] = out[k] / out[w]
    return out


def kpi_table(survey: pd.DataFrame) -> pd.DataFrame:
    """Per community and month (plus the respondent-weighted zone row): both KPIs, their margins, verdicts
    against :data:`TARGETS` and the change from the previous month (percentage points; NaN when the community
    had no poll that month).

    The zone row's change compares like with like: only the communities polled in both months, each month
    weighted by its own respondents (NaN when no community was polled in both). ``communities`` counts the
    communities in the row (1 for a community's own row).

    ``survey`` has the ``survey_results`` columns: ``community``, ``month``, ``respondents``,
    ``fear_of_crime_pct``, ``confidence_in_police_pct``.
    """
    s = survey[["community", "month", "respondents", *TARGETS]].copy()
    s["month"] = pd.to_datetime(s["month"]).dt.to_period("M")
    zone = _weighted(s).assign(communities=s.groupby("month")["community"].nunique())
    zone = zone.reset_index().assign(community=ALL)
    # the zone's change over the communities polled in this month and the one before
    both = s.merge(s.assign(month=s["month"] + 1), on=["community", "month"], suffixes=("", "_prev"))
    now = _weighted(both)
    before = _weighted(both.drop(columns=["respondents", *TARGETS])
                       .rename(columns=lambda c: c.removesuffix("_prev")))
    t = pd.concat([s.assign(communities=1), zone], ignore_index=True).sort_values(["community", "month"],
                                                                                  kind="stable")
    # a change is from the month before; after a month with no poll there is none to compare with
    follows = t.groupby("community")["month"].shift() == t["month"] - 1
    is_zone = t["community"] == ALL
    for k, tgt in TARGETS.items():
        short = k.split("_")[0]
        zone_change = t["month"].map(now[k] - before[k]).astype(float).round(1)
        t[k] = t[k].round(1)
        t[f"{short}_moe"] = margin_pct(t[k], t["respondents"]).round(1)
        t[f"{short}_verdict"] = verdict(t[k], t[f"{short}_moe"], tgt)
        t[f"{short}_change"] = t.groupby("community")[k].diff().round(1).where(follows).where(~is_zone, zone_change)
    return t.reset_index(drop=True)


def latest(kpi: pd.DataFrame) -> pd.DataFrame:
    """The last month of each community from :func:`kpi_table` (the zone row last): a community not polled in
    the newest month keeps its own last row (its ``month`` says which), it is never left out."""
    last = kpi.loc[kpi.groupby("community")["month"].idxmax()].copy()
    last["_z"] = last["community"] == ALL
    return last.sort_values(["_z", "community"]).drop(columns="_z").reset_index(drop=True)
