"""The near-repeat (Knox) test: do incidents close in space also fall close in time, more than chance?

After a burglary or a theft, the same place and its neighbours run a raised risk for some days (Townsley,
Homel & Chaseling 2003; Johnson & Bowers 2004). The Knox test counts every pair of incidents by how far apart
they are in space (bands of metres) and in time (bands of days). Under the null hypothesis that space and
time are independent, shuffling the incident times among the incident places keeps both distributions and
breaks any link; repeating the shuffle ``n_perm`` times (Monte Carlo permutation, as the Near Repeat
Calculator of Ratcliffe 2009 does) gives the expected count of each cell and a p-value
``(1 + #{shuffles with count >= observed}) / (n_perm + 1)``. A Knox ratio (observed / expected) above 1 with
a small p-value in the first bands is a near-repeat pattern.

Bands are half-open ``[lo, hi)``: ``space_m=(0, 100, 200)`` gives 0-100 m, 100-200 m and 200 m or more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd


@dataclass
class KnoxResult:
    """Pair counts by space band (rows) and time band (columns), with the Monte Carlo comparison."""

    observed: pd.DataFrame
    expected: pd.DataFrame
    ratio: pd.DataFrame
    p_value: pd.DataFrame
    n_events: int
    n_pairs: int
    n_perm: int

    def table(self) -> pd.DataFrame:
        """One long table: space band, time band, observed, expected, Knox ratio, p-value."""
        parts = {k: getattr(self, k).stack() for k in ("observed", "expected", "ratio", "p_value")}
        out = pd.DataFrame(parts)
        out.index.names = ["space", "time"]
        return out.reset_index()


def _labels(edges: Sequence[float], unit: str) -> list[str]:
    e = [float(x) for x in edges]
    return [f"{a:g}-{b:g} {unit}" for a, b in pairwise(e)] + [f">= {e[-1]:g} {unit}"]


def _band(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, values, side="right") - 1


def knox(x: np.ndarray, y: np.ndarray, t_days: np.ndarray, space_m: Sequence[float] = (0, 100, 200, 400),
         time_days: Sequence[float] = (0, 7, 14, 28), n_perm: int = 99, seed: int = 0) -> KnoxResult:
    """Knox space-time table with a Monte Carlo permutation test.

    Parameters
    ----------
    x, y
        Incident positions in metres (a projected CRS, e.g. UTM).
    t_days
        Incident times in days (any origin), e.g. ``(ts - ts.min()).dt.total_seconds() / 86400``.
    space_m, time_days
        Increasing band edges starting at 0 (the last band is open-ended).
    n_perm
        Number of random permutations of the times (99 or 999 by convention).
    seed
        Random seed (the result is deterministic for a seed).

    Raises
    ------
    ValueError
        Lengths differ, fewer than 3 incidents, an incident without position or time (NaN or infinite), bad bands.

    Returns
    -------
    KnoxResult
        ``observed`` pair counts, ``expected`` (mean over permutations), ``ratio`` (observed/expected, NaN
        where expected is 0) and ``p_value`` per cell.
    """
    from scipy.spatial.distance import pdist

    x, y, t = (np.asarray(a, float) for a in (x, y, t_days))
    if not (len(x) == len(y) == len(t)):
        raise ValueError("x, y and t_days must have the same length")
    bad = ~(np.isfinite(x) & np.isfinite(y) & np.isfinite(t))
    if bad.any():  # a NaN distance or time would fall in the open last band and be counted as a far pair
        raise ValueError(f"{int(bad.sum())} of {len(x)} incidents have no position or no time (NaN or infinite, "
                         f"e.g. a NaT ts), first at position {int(np.flatnonzero(bad)[0])}: leave them out first, e.g. "
                         "frame[frame['ts'].notna() & frame['x'].notna() & frame['y'].notna()]")
    if len(x) < 3:
        raise ValueError(f"the Knox test needs at least 3 incidents, got {len(x)}")
    se, te = np.asarray(space_m, float), np.asarray(time_days, float)
    for name, e in (("space_m", se), ("time_days", te)):
        if e[0] != 0 or np.any(np.diff(e) <= 0):
            raise ValueError(f"{name} must start at 0 and increase, got {list(e)}")
    if n_perm < 1:
        raise ValueError("n_perm must be at least 1")
    ns, nt = len(se), len(te)
    sband = _band(pdist(np.column_stack([x, y])), se)
    tri = np.triu_indices(len(t), 1)

    def table(times: np.ndarray) -> np.ndarray:
        tb = _band(np.abs(times[tri[0]] - times[tri[1]]), te)
        return np.bincount(sband * nt + tb, minlength=ns * nt).reshape(ns, nt)

    obs = table(t)
    rng = np.random.default_rng(seed)
    sims = np.stack([table(rng.permutation(t)) for _ in range(n_perm)])
    exp = sims.mean(axis=0)
    p = (1 + (sims >= obs[None]).sum(axis=0)) / (n_perm + 1)
    rows, cols = _labels(se, "m"), _labels(te, "days")

    def frame(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(a, index=pd.Index(rows, name="space"), columns=pd.Index(cols, name="time"))

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(exp > 0, obs / exp, np.nan)
    return KnoxResult(frame(obs), frame(exp.round(3)), frame(np.round(ratio, 3)), frame(p), len(x),
                      len(tri[0]), n_perm)
