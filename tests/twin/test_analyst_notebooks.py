"""The six analyst notebooks run top to bottom (nbclient, the project's ``ssz`` kernel, offline), each under
60 s, and the key numbers each prints (its last cell: ``KEY {...}``) equal what the analysis module gives on
the same simulated data."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

from cluster.lab import KERNEL_NAME, ensure_kernel
from cluster.sim import analystdata as ad
from twin import fieldinput as fi
from twin.analysis import alertreview, compstat, hotspots, kpis, nearrepeat, patrols

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
AS_OF = dt.date(2026, 3, 28)
BUDGET_S = 60.0


@pytest.fixture(scope="module")
def z() -> ad.ZoneData:
    return ad.zone_data("hatyai", seed=0)


@pytest.fixture(scope="module")
def incidents(z: ad.ZoneData) -> pd.DataFrame:
    return ad.simulated_incidents(z, AS_OF, seed=0)


@pytest.fixture(autouse=True)
def _store_and_kernel(s3_store: object) -> None:
    # The kernel inherits SSZ_HOME (the suite's temporary state, where the session's store runs).
    assert Path(os.environ["SSZ_HOME"]).resolve() != (Path.home() / ".local" / "state" / "ssz").resolve()
    ensure_kernel()


def run(name: str, tmp_path: Path, folder: Path = NOTEBOOKS) -> tuple[dict, float, nbformat.NotebookNode]:
    """Run ``folder/name`` with the kernel started in ``tmp_path``; its key numbers, seconds taken, the notebook."""
    nb = nbformat.read(folder / name, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == KERNEL_NAME
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=300, resources={"metadata": {"path": str(tmp_path)}})
    t0 = time.monotonic()
    client.execute()
    took = time.monotonic() - t0
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    keys = [o["text"].split("KEY ", 1)[1] for c in nb.cells for o in c.get("outputs", [])
            if o.get("output_type") == "stream" and "KEY " in o.get("text", "")]
    assert len(keys) == 1, "the notebook's last cell prints its key numbers once"
    text = json.dumps([c.source for c in nb.cells if c.cell_type == "markdown"])
    assert "SIMULATED DATA" in text and text.count("How to read this") >= 2
    print(f"{name} ran in {took:.1f}s (load {os.getloadavg()[0]:.1f})")
    return json.loads(keys[0]), took, nb


def _widgets(nb: nbformat.NotebookNode) -> int:
    return sum("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for c in nb.cells
               for o in c.get("outputs", []))


def test_compstat_notebook(tmp_path: Path, z: ad.ZoneData, incidents: pd.DataFrame) -> None:
    key, took, nb = run("analyst_compstat.ipynb", tmp_path)
    t = compstat.compstat(incidents, AS_OF, by=["zone"])
    assert key["all"] == t.loc["all", ["current", "previous", "last_year"]].tolist()
    assert key["zone"] == t.loc["Safety Zone", ["current", "previous", "last_year"]].tolist()
    assert key["zone_year_pct"] == pytest.approx(t.loc["Safety Zone", "change_year_pct"])
    assert key["rows"] == key["kept"] == len(incidents)  # the Thai CSV read back whole through the reader
    inside = fi.Area(z.area, "x").contains(incidents["lon"].to_numpy(), incidents["lat"].to_numpy())
    assert key["outside"] == int((~inside).sum())
    assert _widgets(nb) == 1 and took < BUDGET_S


def test_hotspots_notebook(tmp_path: Path, z: ad.ZoneData, incidents: pd.DataFrame) -> None:
    key, took, nb = run("analyst_hotspots.ipynb", tmp_path)
    local = incidents["ts"].dt.tz_convert("Asia/Bangkok")
    start = pd.Timestamp(AS_OF).tz_localize("Asia/Bangkok") - pd.Timedelta(days=90)
    train, test = incidents[local < start], incidents[local >= start]
    grid = hotspots.Grid.over(z.zone_utm.buffer(ad.SURROUND_M).bounds, 50.0)
    study = grid.inside(z.zone_utm.buffer(ad.SURROUND_M))
    obs = grid.counts(test["x"], test["y"])
    risk = hotspots.pai_pei(grid.counts(z.demand.x, z.demand.y, z.demand.length_m * z.risk), obs, 0.1, study)
    kde = hotspots.pai_pei(hotspots.kde(train["x"], train["y"], grid, 100.0), obs, 0.1, study)
    assert key["test"] == len(test) and key["n"] == len(incidents)
    assert key["pai_risk"] == pytest.approx(risk["pai"], abs=1e-3) and key["pei_risk"] == pytest.approx(risk["pei"],
                                                                                                        abs=1e-3)
    assert key["pai_kde"] == pytest.approx(kde["pai"], abs=1e-3) and risk["pai"] > 1.5
    night = hotspots.pai_by_hour_bin(grid.counts(z.demand.x, z.demand.y, z.demand.length_m * z.risk), test["x"],
                                     test["y"], test["ts"].dt.tz_convert("Asia/Bangkok").dt.hour, grid, cells=study)
    assert key["pai_night"] == pytest.approx(night.loc["night 00-06", "pai"])
    clock = hotspots.hour_by_weekday(incidents)
    assert key["peak_count"] == clock.to_numpy().max()
    assert clock.loc[key["peak"][0], key["peak"][1]] == key["peak_count"]
    assert _widgets(nb) == 1 and took < BUDGET_S


def test_near_repeat_notebook(tmp_path: Path, incidents: pd.DataFrame) -> None:
    key, took, nb = run("analyst_near_repeat.ipynb", tmp_path)
    local = incidents["ts"].dt.tz_convert("Asia/Bangkok")
    year = incidents[(local > pd.Timestamp(AS_OF).tz_localize("Asia/Bangkok") - pd.Timedelta(days=365))
                     & incidents["kind"].isin(["burglary", "theft"])]
    k = nearrepeat.knox(year["x"], year["y"], (year["ts"] - year["ts"].min()).dt.total_seconds() / 86400,
                        (0, 100, 200, 400), (0, 7, 14, 28), n_perm=99, seed=0)
    assert (key["events"], key["pairs"], key["obs00"]) == (k.n_events, k.n_pairs, int(k.observed.iloc[0, 0]))
    assert key["ratio00"] == pytest.approx(k.ratio.iloc[0, 0]) and key["p00"] == pytest.approx(k.p_value.iloc[0, 0])
    assert key["ratio00"] > 1 and key["p00"] <= 0.05  # the simulation plants near repeats: the test finds them
    assert _widgets(nb) == 1 and took < BUDGET_S


def test_patrols_notebook(tmp_path: Path, z: ad.ZoneData) -> None:
    key, took, nb = run("analyst_patrols.ipynb", tmp_path)
    shift = ad.simulated_patrol_shift(z, AS_OF, seed=0)
    gps = fi.validate_frame(shift.pings, "gps_pings", area=fi.Area(z.area, "x"))
    assert key["null_island"] == gps.counts["null_island"] >= 1 and key["jumps"] == gps.counts["jumps"] >= 1
    v = patrols.visits(gps.frame, shift.hotspots, radius_m=50)
    assert key["visits"] == v["verdict"].value_counts().to_dict()
    c = patrols.qr_compliance(shift.planned, shift.scans, grace_min=10, late_max_min=60)
    assert key["qr"] == c["status"].value_counts().to_dict() and sum(key["qr"].values()) == len(shift.planned)
    assert _widgets(nb) == 1 and took < BUDGET_S


def test_alert_review_notebook(tmp_path: Path, z: ad.ZoneData, s3_store: object) -> None:
    from twin.snapshots import SnapshotStore

    # As a simulation run leaves it (CI order): the newest Hat Yai snapshot holds alerts but no registry layers.
    SnapshotStore(s3_store, "hatyai").create({}, message="a run's alerts only", author="test")
    key, took, nb = run("analyst_alert_review.ipynb", tmp_path)
    alerts = ad.simulated_alerts_with_decisions(z, AS_OF, seed=0)
    rev = alertreview.review(alerts, by=["camera_id", "kind"])
    flagged = alertreview.cameras_to_check(rev, min_decided=10, max_precision=0.5)
    assert key["alerts"] == len(alerts)
    assert key["precision"] == pytest.approx(alertreview.review(alerts, by=[])["precision"].iloc[0])
    assert key["flagged"] == sorted(flagged.index.get_level_values(0)) and len(key["flagged"]) >= 1
    assert key["cameras_in_snapshot"] == len(z.reg.cameras_frame())
    assert _widgets(nb) == 1 and took < BUDGET_S


def test_kpis_notebook(tmp_path: Path) -> None:
    from cluster.config import load_city

    key, took, _ = run("analyst_kpis.ipynb", tmp_path)
    communities = [c.name for c in load_city("sukhothai").zone.communities]
    poll = ad.simulated_people_poll(communities, dt.date(2025, 4, 1), months=12, seed=0)
    last = kpis.latest(kpis.kpi_table(poll))
    zone = last[last["community"] == kpis.ALL].iloc[0]
    assert key["rows"] == len(poll) and key["encoding"] == "cp874" and key["refused"] is True
    assert key["zone_fear"] == pytest.approx(zone["fear_of_crime_pct"])
    assert key["zone_confidence"] == pytest.approx(zone["confidence_in_police_pct"])
    assert (key["fear_verdict"], key["confidence_verdict"]) == (zone["fear_verdict"], zone["confidence_verdict"])
    assert np.isfinite(key["zone_fear"]) and took < BUDGET_S


def test_a_working_copy_runs_for_the_city_ssz_lab_chose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as `ssz lab --city betong` runs it: the analyst's copy, the kernel started in the copy's folder (as
    # JupyterLab starts it) with SSZ_CITY in its environment
    from cluster.config import CITY_ENV
    from cluster.notebookcopies import working_copies

    copies = working_copies(tmp_path / "notebooks")
    monkeypatch.setenv(CITY_ENV, "betong")
    key, took, nb = run("analyst_compstat.ipynb", copies.folder, copies.folder)
    betong = ad.zone_data("betong", seed=0)
    t = compstat.compstat(ad.simulated_incidents(betong, AS_OF, seed=0), AS_OF, by=["zone"])
    assert key["all"] == t.loc["all", ["current", "previous", "last_year"]].tolist()
    assert key["zone"] == t.loc["Safety Zone", ["current", "previous", "last_year"]].tolist()
    first = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert first.startswith(f"{betong.city.name}: zone {betong.city.zone.area_km2} km²"), first
    # named for its city: another city's run does not overwrite it
    assert (Path(os.environ["SSZ_HOME"]) / "out" / "simulated_incidents_betong_2568-2569.csv").is_file()
    assert took < BUDGET_S
