"""Where and when incidents concentrate, and how well a forecast captures them (PAI, PEI).

- When: counts by day of week x hour of day (local time), the "heat clock" analysts read shifts from.
- Where: a Gaussian kernel density (scikit-learn ``KernelDensity``) of incidents in projected metres (UTM),
  evaluated on square grid cells over the zone, in incidents per km². The kernel is planar: density leaks
  across blocks within about one bandwidth; keep the bandwidth near a block (50-150 m).
- How good: the Predictive Accuracy Index (Chainey, Tompson & Uhlig 2008, Security Journal 21)
  ``PAI = (n / N) / (a / A)`` - the share of incidents in the flagged cells over the share of area flagged -
  and the Predictive Efficiency Index (Hunt 2016, NIJ) ``PEI = n / n*``, where ``n*`` is the most incidents
  any set of cells of the same area held (the cells with the most incidents): 1 means the forecast picked
  the best cells possible. Cells are equal squares, so "the same area" is "the same number of cells".

The risk model's forecast for a cell is its risk-weighted street length (Σ length × relative risk of the
street samples in it, :mod:`twin.risk`), so a cell with more risky street scores higher.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.analysis import LOCAL_TZ

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def hour_by_weekday(incidents: pd.DataFrame, tz: str = LOCAL_TZ) -> pd.DataFrame:
    """Incident counts by day of week (rows Mon..Sun) and hour of day (columns 0..23), local time.

    Rows whose ``hour`` is missing (a date with no time, see :mod:`twin.fieldinput`) are left out.
    """
    t = pd.to_datetime(incidents["ts"], utc=True).dt.tz_convert(tz)
    hour = incidents.get("hour", t.dt.hour)
    ok = pd.notna(hour).to_numpy()
    tab = pd.crosstab(t.dt.dayofweek[ok], pd.Series(hour[ok]).astype(int))
    tab = tab.reindex(index=range(7), columns=range(24), fill_value=0)
    tab.index = list(WEEKDAYS)
    tab.index.name, tab.columns.name = "weekday", "hour"
    return tab


@dataclass(frozen=True)
class Grid:
    """Square cells of ``cell_m`` metres over a projected extent; cells are numbered row-major from (x0, y0)."""

    x0: float
    y0: float
    cell_m: float
    nx: int
    ny: int

    @classmethod
    def over(cls, bounds: tuple[float, float, float, float], cell_m: float) -> Grid:
        """A grid covering ``(minx, miny, maxx, maxy)`` (metres)."""
        if cell_m <= 0:
            raise ValueError("cell_m must be positive")
        minx, miny, maxx, maxy = bounds
        return cls(minx, miny, cell_m, max(1, int(np.ceil((maxx - minx) / cell_m))),
                   max(1, int(np.ceil((maxy - miny) / cell_m))))

    @property
    def size(self) -> int:
        """Number of cells."""
        return self.nx * self.ny

    @property
    def cell_km2(self) -> float:
        """Area of one cell in km²."""
        return self.cell_m ** 2 / 1e6

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """x, y of every cell centre (arrays of length ``size``)."""
        i = np.arange(self.size)
        return self.x0 + (i % self.nx + 0.5) * self.cell_m, self.y0 + (i // self.nx + 0.5) * self.cell_m

    def index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Cell of each point, -1 for points off the grid."""
        cx = np.floor((np.asarray(x, float) - self.x0) / self.cell_m).astype(int)
        cy = np.floor((np.asarray(y, float) - self.y0) / self.cell_m).astype(int)
        ok = (cx >= 0) & (cx < self.nx) & (cy >= 0) & (cy < self.ny)
        return np.where(ok, cy * self.nx + cx, -1)

    def counts(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Points (or the sum of ``weights``) per cell."""
        i = self.index(x, y)
        ok = i >= 0
        w = None if weights is None else np.asarray(weights, float)[ok]
        return np.bincount(i[ok], weights=w, minlength=self.size).astype(float)

    def inside(self, polygon: object) -> np.ndarray:
        """Cells whose centre lies in a projected shapely polygon (e.g. the zone in UTM)."""
        import shapely

        x, y = self.centres()
        return np.asarray(shapely.contains_xy(polygon, x, y))


def kde(x: np.ndarray, y: np.ndarray, grid: Grid, bandwidth_m: float = 100.0) -> np.ndarray:
    """Gaussian kernel density of points (metres) at every cell centre, in incidents per km².

    Uses scikit-learn's ``KernelDensity`` (a normalised density, times the number of points).
    """
    from sklearn.neighbors import KernelDensity

    if bandwidth_m <= 0:
        raise ValueError("bandwidth_m must be positive")
    pts = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    if not len(pts):
        return np.zeros(grid.size)
    cx, cy = grid.centres()
    kd = KernelDensity(bandwidth=bandwidth_m, kernel="gaussian").fit(pts)
    return np.exp(kd.score_samples(np.column_stack([cx, cy]))) * len(pts) * 1e6


def pai_pei(forecast: np.ndarray, observed: np.ndarray, share: float = 0.1,
            cells: np.ndarray | None = None) -> dict[str, float]:
    """PAI and PEI of a forecast over equal-area cells.

    Parameters
    ----------
    forecast
        Forecast score per cell (higher = riskier).
    observed
        Incidents per cell in the test period.
    share
        Share of the study area to flag: the top ``round(share × cells)`` cells by forecast (at least one).
    cells
        Mask of the cells in the study area (e.g. :meth:`Grid.inside` the zone); default all.

    Returns
    -------
    dict
        ``pai``, ``pei``, ``hit_rate`` (n/N), ``area_share`` (a/A), ``n`` (incidents in flagged cells),
        ``n_star`` (most incidents any same-size set of cells held), ``N``, ``flagged_cells``, ``cells``.
    """
    f = np.asarray(forecast, float)
    o = np.asarray(observed, float)
    if f.shape != o.shape:
        raise ValueError(f"forecast has {f.shape} cells, observed {o.shape}")
    m = np.ones(len(f), bool) if cells is None else np.asarray(cells, bool)
    f, o = f[m], o[m]
    if not 0 < share < 1:
        raise ValueError("share must be between 0 and 1")
    total = float(o.sum())
    if total == 0:
        raise ValueError("no observed incident in the study cells: PAI is undefined")
    k = max(1, round(share * len(f)))
    order = np.lexsort((np.arange(len(f)), -f))  # highest forecast first, ties by cell number
    n = float(o[order[:k]].sum())
    n_star = float(np.sort(o)[::-1][:k].sum())
    hit, area = n / total, k / len(f)
    return {"pai": hit / area, "pei": n / n_star if n_star else 0.0, "hit_rate": hit, "area_share": area,
            "n": n, "n_star": n_star, "N": total, "flagged_cells": k, "cells": len(f)}


def hour_bin_density(x: np.ndarray, y: np.ndarray, hour: np.ndarray, grid: Grid, bins: dict[str, tuple[int, ...]],
                     bandwidth_m: float = 100.0) -> pd.DataFrame:
    """Kernel density per hour-of-day bin (columns) at every cell (rows), incidents per km²."""
    h = np.asarray(pd.array(hour, dtype="Int64").fillna(-1), int)
    return pd.DataFrame({name: kde(np.asarray(x)[np.isin(h, hs)], np.asarray(y)[np.isin(h, hs)], grid, bandwidth_m)
                         for name, hs in bins.items()})


def top_cells(values: np.ndarray, grid: Grid, n: int = 10, cells: np.ndarray | None = None) -> pd.DataFrame:
    """The ``n`` highest cells (cell, x, y of the centre, value), highest first, within ``cells`` (fewer when
    ``cells`` holds fewer than ``n``; a cell outside it is never listed).

    Raises
    ------
    ValueError
        When a cell within ``cells`` has no value (NaN).
    """
    v = np.asarray(values, float)
    inside = np.flatnonzero(np.ones(v.shape, bool) if cells is None else np.asarray(cells, bool))
    if np.isnan(v[inside]).any():
        raise ValueError(f"{int(np.isnan(v[inside]).sum())} cells of the study area have no value (NaN), first "
                         f"cell {int(inside[np.isnan(v[inside])][0])}: fill them (np.nan_to_num) or leave them "
                         "out of cells")
    idx = inside[np.argsort(-v[inside], kind="stable")][:n]
    cx, cy = grid.centres()
    return pd.DataFrame({"cell": idx, "x": cx[idx], "y": cy[idx], "value": v[idx]})


HOUR_BINS: dict[str, tuple[int, ...]] = {
    "night 00-06": tuple(range(0, 6)), "morning 06-12": tuple(range(6, 12)),
    "afternoon 12-18": tuple(range(12, 18)), "evening 18-24": tuple(range(18, 24)),
}


def pai_by_hour_bin(forecast: np.ndarray, x: np.ndarray, y: np.ndarray, hour: np.ndarray, grid: Grid,
                    bins: dict[str, tuple[int, ...]] | None = None, share: float = 0.1,
                    cells: np.ndarray | None = None) -> pd.DataFrame:
    """PAI and PEI of one forecast against the test incidents of each hour-of-day bin (rows), so a forecast that
    is good by night and poor by day shows it. Incidents without an hour are left out; a bin with no incident
    gets NaN."""
    bins = HOUR_BINS if bins is None else bins
    h = np.asarray(pd.array(hour, dtype="Int64").fillna(-1), int)
    rows = {}
    for name, hs in bins.items():
        m = np.isin(h, hs)
        obs = grid.counts(np.asarray(x)[m], np.asarray(y)[m])
        inside = obs if cells is None else obs[np.asarray(cells, bool)]
        if inside.sum() == 0:
            rows[name] = {"incidents": 0, "pai": np.nan, "pei": np.nan, "hit_rate": np.nan}
            continue
        r = pai_pei(forecast, obs, share, cells)
        rows[name] = {"incidents": int(r["N"]), "pai": round(r["pai"], 3), "pei": round(r["pei"], 3),
                      "hit_rate": round(r["hit_rate"], 3)}
    return pd.DataFrame(rows).T
