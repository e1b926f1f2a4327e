"""``ssz plan capacity`` and ``ssz bench stages --from-run`` on bad input: clear errors (exit 2), no traceback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.cli import app
from cluster.stagecosts import write_costs
from tests.cluster.test_capacity import COSTS, _calibrated, _truth


def _invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture()
def costs(tmp_path: Path) -> Path:
    return write_costs(_calibrated(), tmp_path / "costs.json")


def _bad_runs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Bad run files and the words their error must hold."""
    files = {"array.json": ("[1, 2]", "not a JSON list"), "text.json": ("cameras: 3", "not readable JSON"),
             "many.json": (json.dumps({**_truth(32, 10, 0.1), "metrics": {**_truth(32, 10, 0.1)["metrics"],
                                                                          "cameras": "many"}}), "wrong type"),
             "negative.json": (json.dumps({**_truth(32, 10, 0.1), "metrics": {**_truth(32, 10, 0.1)["metrics"],
                                                                              "cameras": -5}}), "greater than")}
    out = {}
    for name, (text, words) in files.items():
        (tmp_path / name).write_text(text)
        out[name] = (tmp_path / name, words)
    (tmp_path / "adir").mkdir()
    out["adir"] = (tmp_path / "adir", "is a directory")
    out["missing"] = (tmp_path / "missing.json", "file not found")
    return out


def test_stations_must_be_at_least_one(costs: Path) -> None:
    for n in ("-5", "0"):
        code, out, err = _invoke("plan", "capacity", "--costs", str(costs), "--city", "national", "--stations", n)
        assert code == 2 and out == "" and "--stations" in err and "greater than or equal to 1" in " ".join(err.split())


def test_validate_names_the_bad_run_file(tmp_path: Path, costs: Path) -> None:
    for path, words in _bad_runs(tmp_path).values():
        code, out, err = _invoke("plan", "capacity", "--costs", str(costs), "--validate", str(path))
        flat = " ".join(err.split())
        assert code == 2 and out == "" and flat.startswith("error:"), (path, err)
        assert str(path) in flat and words in flat and "ssz run --detect truth --json" in flat, (path, err)


def test_validate_of_a_calibration_run_warns(tmp_path: Path, costs: Path) -> None:
    (tmp_path / "cal.json").write_text(json.dumps(_truth(96, 1, 0.5)))
    code, out, err = _invoke("plan", "capacity", "--costs", str(costs), "--validate", str(tmp_path / "cal.json"))
    assert code == 0 and json.loads(out)["independent"] is False
    assert "warning:" in err and "calibration run" in " ".join(err.split())


def test_costs_file_errors_say_what_is_wrong(tmp_path: Path, costs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def err_of(*args: str) -> str:
        code, out, err = _invoke("plan", "capacity", "--city", "hatyai", *args)
        assert code == 2 and out == "", err
        return " ".join(err.split())

    missing = tmp_path / "nonexistent.json"
    e = err_of("--costs", str(missing))
    assert "file not found" in e and str(missing) in e and "no measured stage costs" not in e
    (tmp_path / "notjson.json").write_text("not json")
    e = err_of("--costs", str(tmp_path / "notjson.json"))
    assert str(tmp_path / "notjson.json") in e and "not readable JSON" in e
    old = json.loads(costs.read_text()) | {"retired_field_ms": 1.0}
    (tmp_path / "old.json").write_text(json.dumps(old))
    e = err_of("--costs", str(tmp_path / "old.json"))
    assert str(tmp_path / "old.json") in e and "retired_field_ms" in e and "ssz bench stages" in e
    assert "cluster/config.py" not in e
    (tmp_path / "run.json").write_text(json.dumps(_truth(32, 10, 0.1)))
    e = err_of("--costs", str(tmp_path / "run.json"))
    assert "looks like an `ssz run --json` output" in e and "--validate" in e
    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "home"))
    e = err_of()
    assert "no measured stage costs" in e and "ssz bench stages" in e and "--costs FILE" in e


def test_plot_path_is_checked_before_planning(tmp_path: Path, costs: Path) -> None:
    for path, words in ((tmp_path / "out.txt", "png, svg, pdf"), (tmp_path / "no" / "dir" / "x.png", "does not exist"),
                        (Path("/proc/x.png"), "cannot write")):
        code, out, err = _invoke("plan", "capacity", "--city", "hatyai", "--costs", str(costs), "--plot", str(path),
                                 "--json")
        flat = " ".join(err.split())
        assert code == 2 and out == "" and words in flat and str(path) in flat, (path, err)
    assert not (tmp_path / "no").exists()
    code, out, _ = _invoke("plan", "capacity", "--city", "hatyai", "--costs", str(costs), "--plot",
                           str(tmp_path / "x.svg"), "--json")
    assert code == 0 and json.loads(out)[0]["workload"]["name"] == "hatyai"
    assert (tmp_path / "x.svg").read_text().lstrip().startswith("<?xml")


def test_bench_stages_checks_recorded_runs_before_measuring(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_truth(32, 10, 0.14)))
    for path, words in _bad_runs(tmp_path).values():
        t = time.monotonic()
        code, _, err = _invoke("bench", "stages", "--no-models", "--from-run", str(good), "--from-run", str(path),
                                 "--out", str(tmp_path / "c.json"))
        flat = " ".join(err.split())
        assert code == 2 and words in flat and str(path) in flat, (path, err)
        assert time.monotonic() - t < 5 and not (tmp_path / "c.json").exists()  # nothing measured
    same = tmp_path / "same.json"
    same.write_text(json.dumps(_truth(32, 1, 0.5)))
    code, _, err = _invoke("bench", "stages", "--no-models", "--calibrate", "8x1", "--from-run", str(good),
                           "--from-run", str(same), "--out", str(tmp_path / "c.json"))
    assert code == 2 and "different camera counts" in err and not (tmp_path / "c.json").exists()
    assert "--calibrate is ignored" in " ".join(err.split())


def test_a_costs_file_without_calibration_still_plans(tmp_path: Path) -> None:
    p = write_costs(COSTS, tmp_path / "bare.json")
    code, out, _ = _invoke("plan", "capacity", "--city", "betong", "--costs", str(p), "--json")
    assert code == 0 and json.loads(out)[0]["workload"]["cctv"] == 204
