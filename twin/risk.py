"""Risk of street segments in the style of Risk Terrain Modeling (RTM), hotspots, PAI and work orders.

Each street sample point (:class:`twin.coverage.Demand`) gets one exposure value per risk factor: the sum
over the factor's features (gold shops, banks, markets, bars, bus stops, unlit stretches, overgrown
vegetation, abandoned lots, past alerts) of a distance decay ``exp(-d / bandwidth)`` cut at 3 bandwidths.
The relative risk is ``exp(Σ β_k x_k)`` (1 = a street with no risk factor nearby):

- with incident history, the β are fitted by a count regression (statsmodels Poisson GLM with the street
  length as exposure, or negative binomial when the counts are over-dispersed), as RTM does;
- without history, they come from :class:`RiskConfig` (hand weights a planner can edit).

Hotspots are a planar Gaussian kernel density of incidents evaluated on the street sample points, per
hour-of-day bin. NOTE: the kernel is planar (Euclidean), not a network KDE: density leaks across blocks to
parallel streets within about one bandwidth; keep the bandwidth near a block (50-100 m) when reading it.

Forecast quality is the Predictive Accuracy Index on held-out incidents: (share of incidents on the
flagged streets) / (share of street length flagged). Work orders rank fixable risk points (lighting,
vegetation, abandoned lots) by the expected drop in total risk-weighted street length if fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from twin.coverage import Demand

FIXABLE = ("lighting", "vegetation", "abandoned")


class RiskFactor(BaseModel):
    """One risk factor: features of a kind, the hand weight β and the distance-decay bandwidth."""

    kind: str
    weight: float = Field(description="β: log relative risk at distance 0 from one feature")
    bandwidth_m: float = Field(100.0, gt=0, le=2000)


class RiskConfig(BaseModel):
    """Hand weights used when there is no incident history to fit them (planner-editable)."""

    factors: list[RiskFactor] = [
        RiskFactor(kind="gold_shop", weight=0.8, bandwidth_m=120),
        RiskFactor(kind="bank", weight=0.6, bandwidth_m=120),
        RiskFactor(kind="market", weight=0.7, bandwidth_m=150),
        RiskFactor(kind="bar", weight=0.9, bandwidth_m=120),
        RiskFactor(kind="bus_stop", weight=0.4, bandwidth_m=60),
        RiskFactor(kind="convenience_store", weight=0.3, bandwidth_m=80),
        RiskFactor(kind="lighting", weight=1.0, bandwidth_m=50),
        RiskFactor(kind="vegetation", weight=0.6, bandwidth_m=40),
        RiskFactor(kind="abandoned", weight=0.8, bandwidth_m=60),
        RiskFactor(kind="alert", weight=0.5, bandwidth_m=80),
    ]

    def bandwidths(self) -> dict[str, float]:
        """Bandwidth per factor kind."""
        return {f.kind: f.bandwidth_m for f in self.factors}


class RiskError(ValueError):
    """Risk cannot be computed from what was given; the message says why."""


@dataclass
class Features:
    """Point features by kind (metric x/y, optional ids)."""

    kind: np.ndarray
    x: np.ndarray
    y: np.ndarray
    id: np.ndarray

    @classmethod
    def from_frame(cls, df: pd.DataFrame, epsg: int | None = None) -> Features:
        """From a DataFrame with kind and x/y (metric) or lon/lat (projected to ``epsg``), and an id column."""
        if "x" not in df or "y" not in df:
            if epsg is None or "lon" not in df:
                raise RiskError("features need x/y (metric) columns, or lon/lat with an epsg")
            from twin.graph import utm_transformers

            x, y = utm_transformers(epsg)[0].transform(df["lon"].to_numpy(float), df["lat"].to_numpy(float))
        else:
            x, y = df["x"].to_numpy(float), df["y"].to_numpy(float)
        ids = next((df[c] for c in ("id", "place_id", "risk_id", "alert_id") if c in df), pd.Series(range(len(df))))
        return cls(df["kind"].astype(str).to_numpy(), np.asarray(x, float), np.asarray(y, float),
                   ids.astype(str).to_numpy())

    def __add__(self, other: Features) -> Features:
        return Features(np.concatenate([self.kind, other.kind]), np.concatenate([self.x, other.x]),
                        np.concatenate([self.y, other.y]), np.concatenate([self.id, other.id]))

    def __len__(self) -> int:
        return len(self.x)


def decay(demand: Demand, fx: np.ndarray, fy: np.ndarray, bandwidth_m: float) -> np.ndarray:
    """Exposure of each street sample point to a set of features: Σ exp(-d / bandwidth).

    Parameters
    ----------
    demand
        n street sample points.
    fx, fy
        Shape (k,): metric feature positions (m).
    bandwidth_m
        Decay length (m); features farther than 3 bandwidths are ignored.

    Returns
    -------
    numpy.ndarray
        Shape (n,), >= 0.
    """
    out = np.zeros(len(demand))
    if len(fx) == 0:
        return out
    from scipy.spatial import cKDTree

    ft = cKDTree(np.column_stack([fx, fy]))
    # "ndarray" output keeps pairs at distance 0 (a feature exactly on a sample point).
    sdm = demand.tree.sparse_distance_matrix(ft, 3.0 * bandwidth_m, output_type="ndarray")
    np.add.at(out, sdm["i"], np.exp(-sdm["v"] / bandwidth_m))
    return out


def factor_matrix(demand: Demand, features: Features, config: RiskConfig | None = None) -> tuple[np.ndarray,
                                                                                                 list[str]]:
    """Exposure of each street sample point to each configured risk factor.

    Parameters
    ----------
    demand
        n street sample points.
    features
        The positions of the features (places, risk points) by kind.
    config
        Factors and bandwidths (default :class:`RiskConfig`).

    Returns
    -------
    X, names
        X of shape (n, f) and the f factor names.
    """
    config = config or RiskConfig()
    names = [f.kind for f in config.factors]
    X = np.column_stack([decay(demand, features.x[features.kind == f.kind], features.y[features.kind == f.kind],
                               f.bandwidth_m) for f in config.factors]) if names else np.zeros((len(demand), 0))
    return X, names


class RiskModel(BaseModel):
    """Relative risk exp(Σ β_k x_k): coefficients, where they came from and fit statistics."""

    names: list[str]
    coef: list[float]
    intercept: float = 0.0  # log incidents per metre of street at zero exposure (fitted models)
    source: str = "hand"  # hand | poisson | negative_binomial
    pvalues: list[float] | None = None
    dispersion: float | None = None
    aic: float | None = None
    n_incidents: int = 0

    def score(self, X: np.ndarray) -> np.ndarray:
        """Relative risk per row of the factor matrix (1 = no risk factor nearby)."""
        return np.exp(np.asarray(X, float) @ np.asarray(self.coef, float))

    def weights(self) -> dict[str, float]:
        """β per factor."""
        return dict(zip(self.names, self.coef, strict=True))


def hand_model(config: RiskConfig | None = None) -> RiskModel:
    """The risk model of hand weights from ``config`` (no incident history needed).
    """
    config = config or RiskConfig()
    return RiskModel(names=[f.kind for f in config.factors], coef=[f.weight for f in config.factors])


SNAP_MAX_M = 50.0
"""Incidents farther than this from every street are not counted (m)."""


def edge_counts(demand: Demand, inc_x: np.ndarray, inc_y: np.ndarray, max_m: float = SNAP_MAX_M) -> np.ndarray:
    """Incidents per demand point: each incident goes to its nearest street sample point within ``max_m``.

    Parameters
    ----------
    demand
        n street sample points.
    inc_x, inc_y
        Shape (k,): metric incident positions (m).
    max_m
        Incidents farther than this from every street are dropped (m).

    Returns
    -------
    numpy.ndarray
        Shape (n,), int counts.
    """
    counts = np.zeros(len(demand))
    if len(inc_x):
        d, i = demand.tree.query(np.column_stack([inc_x, inc_y]), distance_upper_bound=max_m)
        np.add.at(counts, i[np.isfinite(d)], 1.0)
    return counts


def segment_table(demand: Demand, X: np.ndarray, counts: np.ndarray | None = None) -> pd.DataFrame:
    """Per street: its length (m), mean exposure per factor and incident count (the unit of the regression).

    Returns
    -------
    pandas.DataFrame
        One row per street (indexed by ``edge``): one column per factor (0..f-1), ``length_m``, ``count``.
    """
    df = pd.DataFrame(X * demand.length_m[:, None])
    df["edge"] = demand.edge
    df["length_m"] = demand.length_m
    df["count"] = 0.0 if counts is None else counts
    g = df.groupby("edge").sum()
    out = g[list(range(X.shape[1]))].div(g["length_m"], axis=0)
    out["length_m"] = g["length_m"]
    out["count"] = g["count"]
    return out


def fit(demand: Demand, X: np.ndarray, names: list[str], inc_x: np.ndarray, inc_y: np.ndarray,
        min_incidents: int = 20) -> RiskModel:
    """Fit the factor weights β by a count regression of incidents per street (street length as exposure).

    Poisson GLM first; when the Pearson dispersion exceeds 1.5 a negative binomial model is fitted instead.

    Parameters
    ----------
    demand
        n street sample points.
    X, names
        The factor matrix, shape (n, f), and its names (:func:`factor_matrix`).
    inc_x, inc_y
        Shape (k,): metric incident positions (m).
    min_incidents
        Fewer incidents than this raise.

    Returns
    -------
    RiskModel
        The fitted weights (``source`` says which model).

    Raises
    ------
    RiskError
        With fewer than ``min_incidents`` incidents (use :func:`hand_model`) or a regression that fails.
    """
    import statsmodels.api as sm

    counts = edge_counts(demand, inc_x, inc_y)
    n = int(counts.sum())
    if n < min_incidents:
        far = len(inc_x) - n
        why = (f"; the other {far} lie more than {SNAP_MAX_M:g} m from every street of the city's graph (check "
               "that they are in this city and that latitude and longitude are not swapped)" if far else "")
        raise RiskError(f"only {n} of {len(inc_x)} incidents snapped to the streets{why}; fitting needs "
                        f"{min_incidents} (give more incidents, or use hand weights from RiskConfig)")
    seg = segment_table(demand, X, counts)
    keep = [k for k in range(X.shape[1]) if seg[k].std() > 1e-9]
    exog = sm.add_constant(seg[keep].to_numpy(float), has_constant="add")
    y = seg["count"].to_numpy(float)
    offset = np.log(seg["length_m"].to_numpy(float))
    pois = sm.GLM(y, exog, family=sm.families.Poisson(), offset=offset).fit()
    dispersion = float(pois.pearson_chi2 / max(pois.df_resid, 1))
    res, source = pois, "poisson"
    if dispersion > 1.5:
        try:
            nb = sm.NegativeBinomial(y, exog, offset=offset).fit(disp=False, maxiter=200)
            if np.isfinite(nb.params).all():
                res, source = nb, "negative_binomial"
        except Exception:  # the NB fit can fail to converge on small data: keep the Poisson fit
            pass
    params = np.asarray(res.params, float)[: exog.shape[1]]
    pv = np.asarray(res.pvalues, float)[: exog.shape[1]]
    coef = np.zeros(X.shape[1])
    pvals = np.ones(X.shape[1])
    coef[keep] = params[1:]
    pvals[keep] = pv[1:]
    return RiskModel(names=names, coef=coef.tolist(), intercept=float(params[0]), source=source,
                     pvalues=pvals.tolist(), dispersion=dispersion, aic=float(res.aic), n_incidents=n)


def segment_risk(demand: Demand, score: np.ndarray) -> pd.DataFrame:
    """Risk per street.

    Parameters
    ----------
    demand
        n street sample points.
    score
        Shape (n,): relative risk of each point (``model.score(X)``).

    Returns
    -------
    pandas.DataFrame
        One row per street (indexed by its ``edge``): ``u``, ``v``, ``key``, ``length_m``, mean relative ``risk``
        and ``risk_length`` (risk-weighted length, m), riskiest first.
    """
    df = pd.DataFrame({"edge": demand.edge, "length_m": demand.length_m, "rw": demand.length_m * score})
    g = df.groupby("edge").sum()
    g["risk"] = g["rw"] / g["length_m"]
    g["u"] = [demand.edges[i][0] for i in g.index]
    g["v"] = [demand.edges[i][1] for i in g.index]
    g["key"] = [demand.edges[i][2] for i in g.index]
    return g.rename(columns={"rw": "risk_length"}).sort_values("risk", ascending=False)


def simulate_incidents(demand: Demand, score: np.ndarray, n: int, seed: int = 0,
                       night_share: float = 0.6) -> pd.DataFrame:
    """SYNTHETIC incidents for demos and tests, labelled ``source=simulated`` (never mix with real records).

    Street points are drawn ∝ length × risk, hours skewed to the night, positions jittered by up to 5 m.

    Parameters
    ----------
    demand
        n street sample points.
    score
        Shape (n,): relative risk.
    n
        Incidents.
    seed
        Random seed.
    night_share
        Share of incidents at night (hours 20-03).

    Returns
    -------
    pandas.DataFrame
        n rows: metric ``x``, ``y`` (m), ``hour`` (0-23), ``source``.
    """
    rng = np.random.default_rng(seed)
    p = demand.length_m * np.asarray(score, float)
    i = rng.choice(len(demand), size=n, p=p / p.sum())
    night = rng.random(n) < night_share
    hour = np.where(night, rng.choice([20, 21, 22, 23, 0, 1, 2, 3], size=n), rng.integers(6, 20, size=n))
    return pd.DataFrame({"x": demand.x[i] + rng.uniform(-5, 5, n), "y": demand.y[i] + rng.uniform(-5, 5, n),
                         "hour": hour, "source": "simulated"})


def generate_risk_points(demand: Demand, n: int = 30, seed: int = 0) -> pd.DataFrame:
    """SYNTHETIC risk points (lighting / vegetation / abandoned) on the zone's streets, ``source=generated``.

    Returns
    -------
    pandas.DataFrame
        n rows: ``risk_id``, ``kind``, metric ``x``, ``y`` (m), ``status`` (reported), ``source``.
    """
    rng = np.random.default_rng(seed)
    i = rng.choice(len(demand), size=n, replace=False, p=demand.length_m / demand.length_m.sum())
    kinds = rng.choice(list(FIXABLE), size=n, p=[0.5, 0.3, 0.2])
    return pd.DataFrame({"risk_id": [f"rp-{k + 1:03d}" for k in range(n)], "kind": kinds,
                         "x": demand.x[i] + rng.uniform(-4, 4, n), "y": demand.y[i] + rng.uniform(-4, 4, n),
                         "status": "reported", "source": "generated"})


HOUR_BINS: dict[str, tuple[int, ...]] = {
    "night 00-06": (0, 1, 2, 3, 4, 5), "morning 06-12": tuple(range(6, 12)),
    "afternoon 12-18": tuple(range(12, 18)), "evening 18-24": tuple(range(18, 24)),
}


def kde_hotspots(demand: Demand, inc: pd.DataFrame, bandwidth_m: float = 75.0,
                 bins: dict[str, tuple[int, ...]] | None = None) -> pd.DataFrame:
    """Planar Gaussian KDE of incidents on the street sample points, one column per hour-of-day bin.

    The kernel density is scikit-learn's (:class:`sklearn.neighbors.KernelDensity`, Gaussian kernel), scaled
    from a probability density to a count density: the sum of one kernel per incident.

    Parameters
    ----------
    demand
        The street sample points (metric ``x``/``y``), shape (n,).
    inc
        Incidents with metric ``x``, ``y`` (m) and optionally ``hour`` (0-23 local; all at hour 0 without it).
    bandwidth_m
        The kernel's standard deviation (m), > 0.
    bins
        Bin name -> local hours; default :data:`HOUR_BINS` (four 6-hour bins).

    Returns
    -------
    pandas.DataFrame
        Shape (n, len(bins) + 1): incidents per km² (planar; see the module note) at each sample point, one
        column per bin plus ``all``.

    Raises
    ------
    RiskError
        When ``bandwidth_m`` is not positive.
    """
    from sklearn.neighbors import KernelDensity

    bins = HOUR_BINS if bins is None else bins
    if bandwidth_m <= 0:
        raise RiskError("bandwidth_m must be positive")
    out = {}
    hours = inc["hour"].to_numpy(int) if "hour" in inc else np.zeros(len(inc), int)
    points = np.column_stack([demand.x, demand.y])
    for name, hs in {**bins, "all": tuple(range(24))}.items():
        m = np.isin(hours, hs)
        dens = np.zeros(len(demand))
        if m.any():
            kde = KernelDensity(kernel="gaussian", bandwidth=bandwidth_m).fit(inc.loc[m, ["x", "y"]].to_numpy(float))
            dens = np.exp(kde.score_samples(points)) * int(m.sum())  # probability density -> incidents per m²
        out[name] = dens * 1e6
    return pd.DataFrame(out)


def pai(demand: Demand, score: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, top_share: float = 0.1
        ) -> dict[str, float]:
    """Predictive Accuracy Index of a risk score on held-out incidents.

    The riskiest streets up to ``top_share`` of street length are flagged; PAI = (share of held-out incidents
    on flagged streets) / (share of length flagged). 1 = no better than chance; higher is better.

    Parameters
    ----------
    demand
        n street sample points.
    score
        Shape (n,): relative risk.
    test_x, test_y
        Shape (k,): metric held-out incident positions (m).
    top_share
        Share of street length flagged, in (0, 1).

    Returns
    -------
    dict
        ``pai``, ``hit_rate``, ``area_share``, ``n_test``.

    Raises
    ------
    RiskError
        For a ``top_share`` outside (0, 1) or no held-out incidents.
    """
    if not 0 < top_share < 1:
        raise RiskError("top_share must be between 0 and 1")
    seg = segment_risk(demand, score)
    cum = seg["length_m"].cumsum() / seg["length_m"].sum()
    flagged = set(seg.index[(cum - seg["length_m"] / seg["length_m"].sum()) < top_share])
    area = float(seg.loc[sorted(flagged), "length_m"].sum() / seg["length_m"].sum())
    if len(test_x) == 0:
        raise RiskError("no held-out incidents to score")
    _, i = demand.tree.query(np.column_stack([test_x, test_y]))
    hit = float(np.isin(demand.edge[i], list(flagged)).mean())
    return {"pai": hit / area if area else 0.0, "hit_rate": hit, "area_share": area, "n_test": len(test_x)}


def work_orders(demand: Demand, model: RiskModel, X: np.ndarray, risk_points: pd.DataFrame,
                config: RiskConfig | None = None) -> pd.DataFrame:
    """Fixable risk points ranked by the expected drop in total risk-weighted street length if fixed.

    Fixing a point removes its decay term from its factor: the relative risk of each nearby street point
    falls by the factor exp(-β_k · exp(-d / bandwidth_k)).

    Parameters
    ----------
    demand
        n street sample points.
    model
        The risk model.
    X
        Shape (n, f): the factor matrix.
    risk_points
        Rows with ``risk_id``, ``kind``, metric ``x``, ``y``.
    config
        Factors and bandwidths.

    Returns
    -------
    pandas.DataFrame
        One row per fixable point, best first: ``drop_m`` (risk-weighted metres) and ``drop_pct`` (share of the
        zone's total risk-weighted length, %).
    """
    config = config or RiskConfig()
    bw = config.bandwidths()
    w = model.weights()
    score = model.score(X)
    total = float((demand.length_m * score).sum())
    rows = []
    for r in risk_points.itertuples(index=False):
        kind = str(r.kind)
        if kind not in FIXABLE or kind not in w or getattr(r, "status", "reported") == "fixed":
            continue
        c = decay(demand, np.array([r.x]), np.array([r.y]), bw[kind])
        drop = float((demand.length_m * score * (1 - np.exp(-w[kind] * c))).sum())
        rows.append({"risk_id": r.risk_id, "kind": kind, "x": r.x, "y": r.y, "drop_m": drop,
                     "drop_pct": 100 * drop / total if total else 0.0})
    out = pd.DataFrame(rows, columns=["risk_id", "kind", "x", "y", "drop_m", "drop_pct"])
    return out.sort_values("drop_m", ascending=False).reset_index(drop=True)


def apply_fixes(X: np.ndarray, names: list[str], demand: Demand, fixed: pd.DataFrame,
                config: RiskConfig | None = None) -> np.ndarray:
    """The factor matrix after fixing the given risk points (their decay terms removed): the 'after' map.

    Returns
    -------
    numpy.ndarray
        Shape (n, f), like ``X``.
    """
    config = config or RiskConfig()
    bw = config.bandwidths()
    X2 = X.copy()
    for r in fixed.itertuples(index=False):
        if str(r.kind) in names:
            k = names.index(str(r.kind))
            X2[:, k] = np.maximum(0.0, X2[:, k] - decay(demand, np.array([r.x]), np.array([r.y]), bw[str(r.kind)]))
    return X2
