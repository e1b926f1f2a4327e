"""``ssz twin`` commands (cluster.cli.twin) against the session's real S3 server and the real Chiang Mai graph."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from cluster.cli.twin import app
from twin import graphstore
from twin.objectstore import Store
from twin.snapshots import SnapshotStore

runner = CliRunner()


def _run(*args: str) -> object:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, (res.output, res.stderr if hasattr(res, "stderr") else "", res.exception)
    return json.loads(res.stdout)


def test_build_then_snapshot_commands(s3_store: Store, tmp_path: Path) -> None:
    out = _run("build", "--city", "chiangmai")
    assert out["graph"]["crs"] == "EPSG:32647" and (out["graph"]["nodes"], out["graph"]["edges"]) == (1935, 4552)
    # 150 CCTV + 12 plate cameras (+ configured mobile ones); all places of the config.
    assert out["layers"]["cameras"] >= 162 and out["layers"]["zones"] == 1 and out["layers"]["places"] > 20
    G = graphstore.load_graph(s3_store, "chiangmai", digest=out["graph"]["digest"])
    assert G.number_of_edges() == 4552
    snaps = SnapshotStore(s3_store, "chiangmai")
    first = snaps.open(out["snapshot"])
    cams = first.table("cameras")
    assert cams.column("edge_u").null_count == 0 and cams.column("edge_offset_m").null_count == 0
    fixed = cams.filter(pa.compute.equal(cams.column("mount"), "fixed"))
    assert set(fixed.column("owner").to_pylist()) <= {"police", "government", "private"}

    # Add alerts from a layer file: one good, one bad row (rejected with its reason, not committed).
    t0 = dt.datetime(2021, 12, 1, 1, 0, tzinfo=dt.UTC)
    pq.write_table(pa.table({"alert_id": ["a1", "a2"], "camera_id": ["chiangmai-cam-0001"] * 2,
                             "ts": pa.array([t0, t0], pa.timestamp("ms", tz="UTC")), "kind": ["face", "nope"],
                             "status": ["new", "new"], "lon": [98.97, 98.97], "lat": [18.8, 18.8]}),
                   tmp_path / "alerts.parquet")
    made = _run("snapshot", "create", "--city", "chiangmai", "--from-dir", str(tmp_path), "--message", "alerts",
                "--as-of", "2021-12-01 08:00")
    assert made["rows"]["alerts"] == 1 and "not one of" in made["rejected"]["alerts"][0]
    listed = _run("snapshot", "list", "--city", "chiangmai")
    assert [s["id"] for s in listed][-2:] == [out["snapshot"], made["id"]]
    shown = _run("snapshot", "show", "--city", "chiangmai", "--as-of", "2021-12-01 08:30")
    assert shown["id"] == made["id"] and shown["objects"]["alerts"]["rows"] == 1
    diff = _run("snapshot", "diff", "--city", "chiangmai", out["snapshot"], made["id"])
    assert diff["layers"] == {"alerts": {"added": 1, "removed": 0, "changed": 0}}
    kept = _run("snapshot", "retain", "--city", "chiangmai", "--keep", "1", "--dry-run")
    assert kept["kept"] == [made["id"]] and kept["dry_run"]

    bad = runner.invoke(app, ["snapshot", "show", "--city", "atlantis"])
    assert bad.exit_code == 2 and "unknown city" in bad.stderr


def test_snapshot_options_that_would_do_nothing_or_name_no_folder_are_refused(tmp_path: Path) -> None:
    """`snapshot create --from-dir` of a missing or empty folder committed an unchanged snapshot (exit 0); retain's
    errors named the Python parameters (keep_last, older_than) instead of the options. No store is touched."""
    for folder, said in ((tmp_path / "missing", "no such folder"), (tmp_path, "no <layer>.parquet files in it")):
        res = runner.invoke(app, ["snapshot", "create", "--city", "hatyai", "--from-dir", str(folder)])
        assert res.exit_code == 2 and f"--from-dir {folder}: {said}" in res.output, res.output
    res = runner.invoke(app, ["snapshot", "retain", "--city", "hatyai"])
    assert res.exit_code == 2 and "give --keep N and/or --older-than-days D" in res.output, res.output
    res = runner.invoke(app, ["snapshot", "retain", "--city", "hatyai", "--keep", "0"])
    assert res.exit_code == 2 and "--keep 0: keep at least 1" in res.output, res.output
