"""``ssz plan`` commands on the real Chiang Mai street network, and the plan benchmark on small inputs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.cli.plan import app
from twin.plan_bench import bench_plan

pytestmark = pytest.mark.services  # a solver, a notebook, plots or a benchmark: slow on its own


def _run(*args: str) -> dict:
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 0, (r.output, r.exception)
    return json.loads(r.stdout[r.stdout.index("{"):])


def test_cameras_command_places_p_sites() -> None:
    out = _run("cameras", "--p", "4", "--no-exact")
    assert out["method"] == "greedy" and len(out["new_sites"]) == 4 and out["pinned_cameras"] > 100
    assert out["covered_share_after"] > out["covered_share_before"]
    curve = out["marginal_curve"]
    assert len(curve) == 5 and all(b >= a for a, b in itertools.pairwise(curve))
    for s in out["new_sites"]:
        assert 98.9 < s["lon"] < 99.1 and 18.7 < s["lat"] < 18.9


def test_patrol_and_risk_commands() -> None:
    out = _run("patrol", "--time-limit", "1", "--shift-h", "3", "--per-day", "3")
    assert out["checkpoints"] == 20 and len(out["routes"]) == 2 and len(out["hotspots_today"]) == 3
    visited = {s for r in out["routes"] for s in r["stops"]}
    assert sum(1 for s in visited if "-qr-" in s) == 20 and all(r["end_min"] <= 180 for r in out["routes"])
    shares = list(out["reachable_share_from_station"].values())
    assert shares == sorted(shares)
    risk = _run("risk", "--top", "3")
    assert risk["weights_source"] == "hand" and len(risk["work_orders"]) == 3
    drops = [w["expected_drop_pct"] for w in risk["work_orders"]]
    assert drops == sorted(drops, reverse=True) and drops[0] > 0


def test_bad_p_is_a_clear_error() -> None:
    r = CliRunner().invoke(app, ["cameras", "--p", "100000", "--no-exact"])
    assert r.exit_code == 2 and "candidate sites" in r.output


@pytest.mark.timeout(300)
def test_bench_plan_small() -> None:
    out = bench_plan(p_zone=5, p_city=10, zone_time_limit_s=10, city_time_limit_s=5, n_checkpoints=10, units=2,
                     routing_time_limit_s=1)
    json.dumps(out)
    z, c, r = out["zone_exact"], out["city_scale"], out["routing"]
    assert z["exact"]["status"] in {"optimal", "time_limit"} and z["pinned_cameras"] == 40
    assert z["exact"]["new_demand_m"] >= z["greedy"]["new_demand_m"] - 1e-6
    assert c["pinned_cameras"] == 617 and c["greedy"]["gap_to_best_bound"] >= 0
    assert r["all_checkpoints_visited"] and r["checkpoints"] == 10 and len(r["route_minutes"]) == 2


def test_risk_command_fits_incidents_and_draws_before_after_map(tmp_path: Path) -> None:
    from cluster.planning import build_context
    from twin import risk as rk

    ctx = build_context("chiangmai")
    inc = rk.simulate_incidents(ctx.demand, ctx.model.score(ctx.X), 500, seed=9)
    lon, lat = ctx.to_lonlat(inc["x"].to_numpy(), inc["y"].to_numpy())
    csv = tmp_path / "incidents.csv"
    inc.assign(lon=lon, lat=lat)[["lon", "lat", "hour"]].to_csv(csv, index=False)
    out = _run("risk", "--incidents", str(csv), "--top", "3", "--map", str(tmp_path / "risk.html"))
    assert out["weights_source"] in {"poisson", "negative_binomial"}
    assert out["pai_held_out"]["pai"] > 1.5 and out["pai_held_out"]["n_test"] > 100
    assert set(out["hotspots_by_hour"]) >= {"night 00-06", "all"}
    html = (tmp_path / "risk.html").read_text(encoding="utf-8")
    assert "Street risk before fixes" in html and "Street risk after 5 fixes" in html
