"""Risk terrain scores, fitted weights, KDE hotspots, PAI and work orders on the real Chiang Mai streets."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from cluster.config import load_city
from cluster.registry import build_registry, zone_polygon
from twin import coverage as cv
from twin import risk as rk


@pytest.fixture(scope="module")
def setup(cm_graph: nx.MultiDiGraph, cm_proj: nx.MultiDiGraph) -> dict:
    city = load_city("chiangmai")
    demand = cv.sample_streets(cm_proj, 8.0, zone=zone_polygon(city)[1])
    reg = build_registry(city, cm_graph)
    rp = rk.generate_risk_points(demand, 30, seed=1)
    feats = rk.Features.from_frame(reg.places_frame(), 32647) + rk.Features.from_frame(rp)
    X, names = rk.factor_matrix(demand, feats)
    truth = rk.hand_model()
    inc = rk.simulate_incidents(demand, truth.score(X), 600, seed=2)
    return {"demand": demand, "X": X, "names": names, "rp": rp, "truth": truth, "train": inc.iloc[:400],
            "test": inc.iloc[400:]}


def test_exposure_decays_with_distance(setup: dict) -> None:
    d: cv.Demand = setup["demand"]
    fx, fy = np.array([d.x[0]]), np.array([d.y[0]])
    e = rk.decay(d, fx, fy, 50.0)
    dist = np.hypot(d.x - fx[0], d.y - fy[0])
    assert e[0] == pytest.approx(1.0)
    assert np.all(e[dist > 150] == 0)
    near = dist < 150
    order = np.argsort(dist[near])
    assert np.all(np.diff(e[near][order]) <= 1e-12)


def test_count_regression_recovers_the_risk_factors(setup: dict) -> None:
    d, X, names = setup["demand"], setup["X"], setup["names"]
    tr = setup["train"]
    m = rk.fit(d, X, names, tr.x.to_numpy(), tr.y.to_numpy())
    assert m.source in {"poisson", "negative_binomial"} and m.n_incidents >= 390
    w, truth = m.weights(), setup["truth"].weights()
    for k in ("lighting", "bar", "abandoned"):
        assert w[k] > 0 and abs(w[k] - truth[k]) < 0.8, (k, w[k], truth[k])
    assert w["alert"] == 0.0  # no alert features: the factor is dropped, not invented


def test_pai_of_fitted_model_beats_chance(setup: dict) -> None:
    d, X, names, tr, te = setup["demand"], setup["X"], setup["names"], setup["train"], setup["test"]
    m = rk.fit(d, X, names, tr.x.to_numpy(), tr.y.to_numpy())
    good = rk.pai(d, m.score(X), te.x.to_numpy(), te.y.to_numpy(), top_share=0.1)
    bad = rk.pai(d, 1.0 / m.score(X), te.x.to_numpy(), te.y.to_numpy(), top_share=0.1)
    assert 0.05 < good["area_share"] < 0.2 and good["n_test"] == 200
    assert good["pai"] > 2.0 and good["pai"] > 3 * bad["pai"]


def test_kde_by_hour_partitions_the_day(setup: dict) -> None:
    k = rk.kde_hotspots(setup["demand"], setup["train"], bandwidth_m=75)
    bins = [c for c in k.columns if c != "all"]
    assert np.allclose(k[bins].sum(axis=1), k["all"])
    assert k["night 00-06"].sum() + k["evening 18-24"].sum() > k["morning 06-12"].sum() + k["afternoon 12-18"].sum()
    # The densest street point is close to where the training incidents pile up.
    top = int(k["all"].idxmax())
    d = setup["demand"]
    dist = np.hypot(setup["train"].x - d.x[top], setup["train"].y - d.y[top])
    assert (dist < 75).sum() >= 5


def test_work_orders_rank_by_expected_drop(setup: dict) -> None:
    d, X, names, rp = setup["demand"], setup["X"], setup["names"], setup["rp"]
    m = setup["truth"]
    wo = rk.work_orders(d, m, X, rp)
    assert len(wo) == len(rp) and set(wo.kind) <= set(rk.FIXABLE)
    assert (wo.drop_m > 0).all() and wo.drop_m.is_monotonic_decreasing
    before = float((d.length_m * m.score(X)).sum())
    after = float((d.length_m * m.score(rk.apply_fixes(X, names, d, wo.head(1)))).sum())
    assert before - after == pytest.approx(wo.drop_m.iloc[0], rel=1e-6)
    fixed = rp.assign(status=np.where(rp.risk_id == wo.risk_id.iloc[0], "fixed", rp.status))
    assert wo.risk_id.iloc[0] not in set(rk.work_orders(d, m, X, fixed).risk_id)


def test_too_few_incidents_is_a_clear_error(setup: dict) -> None:
    with pytest.raises(rk.RiskError, match="hand weights"):
        rk.fit(setup["demand"], setup["X"], setup["names"], np.array([0.0]), np.array([0.0]))
    # incidents far from every street: the error says how many were given and why they were not counted
    with pytest.raises(rk.RiskError, match=r"only 0 of 3 incidents .* the other 3 lie more than 50 m"):
        rk.fit(setup["demand"], setup["X"], setup["names"], np.full(3, 1e9), np.full(3, 1e9))
    with pytest.raises(rk.RiskError, match="x/y"):
        rk.Features.from_frame(pd.DataFrame({"kind": ["bar"], "lon": [98.9], "lat": [18.8]}))
