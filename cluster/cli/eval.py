"""``ssz eval``: run a simulated day of a city and measure the alerts against its ground truth (:mod:`cluster.sim`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cluster.cli.common import SIM_OPTIONS, USER_ERRORS, CityOpt, console, err, fail


def eval_cmd(
    city: CityOpt = "hatyai",
    seed: Annotated[int, typer.Option(help="Scenario seed (same seed, same ground truth).")] = 0,
    face_cameras: Annotated[int, typer.Option(help="Zone CCTV cameras rendered and processed.")] = 6,
    plate_cameras: Annotated[int, typer.Option(help="Plate cameras rendered and processed.")] = 2,
    stream_s: Annotated[float, typer.Option(help="Simulated footage per camera (s).")] = 90.0,
    live: Annotated[bool, typer.Option(help="Drop frames the machine cannot process in time (as in production) "
                                            "instead of waiting for the models.")] = False,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: <state>/eval/<city>-<seed>).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Simulate a day, stream the rendered cameras through the models, compare alerts with the ground truth and
    write report.md / report.html (tables and plots)."""
    from cluster import raycluster, store
    from cluster.config import load_city
    from cluster.sim.city import SimConfig, build, next_day
    from cluster.sim.evaluation import evaluate
    from cluster.sim.report import write_report
    from cluster.sim.run import run
    from cluster.state import state_dir

    t0 = time.monotonic()
    try:
        city = load_city(city).id
        sim_cfg = SimConfig(city=city, face_cameras=face_cameras, plate_cameras=plate_cameras, stream_s=stream_s,
                            scenario={"seed": seed, "day": next_day(city)})  # checked before anything starts
        store.up()
        raycluster.connect()
        sim = build(sim_cfg)
        err.print(f"scenario {sim.scenario.fingerprint()}: {len(sim.scenario.sightings)} sightings; rendering "
                  f"{', '.join(sim.rendered_cameras)}")
        res = evaluate(sim, run(sim, lossless=not live), wall_s=time.monotonic() - t0)
    except USER_ERRORS as e:
        fail(e, options=SIM_OPTIONS)
    files = write_report(res, out or state_dir("eval") / f"{sim.city.id}-{seed}")
    if as_json:
        sys.stdout.write(json.dumps({"metrics": res.table(), "latency_p50_ms": res.latency_p50_ms,
                                     "latency_p99_ms": res.latency_p99_ms, "frames_decoded": res.frames_decoded,
                                     "frames_gate_skipped": res.frames_gate_skipped,
                                     "frames_processed": res.frames_processed, "frames_dropped": res.frames_dropped,
                                     "wall_s": res.wall_s, "report": files.html}, indent=2) + "\n")
        return
    t = Table(title=f"ssz eval {sim.city.id} seed {seed}")
    for col in ("kind", "recall", "precision", "false / camera-hour", "recognisable", "detected", "alerts",
                "false", "unlisted alerted"):
        t.add_column(col)
    for m in res.metrics:
        t.add_row(m.kind, _pct(m.recall), _pct(m.precision),
                  "–" if m.false_per_camera_hour is None else f"{m.false_per_camera_hour:.2f}", str(m.recognisable),
                  str(m.detected), str(m.alerts), str(m.false_alerts), str(m.unlisted_alerted))
    console.print(t)
    console.print(f"latency p50 {res.latency_p50_ms} ms, p99 {res.latency_p99_ms} ms; frames {res.frames_decoded} "
                  f"decoded, {res.frames_gate_skipped} skipped by the motion gate, {res.frames_processed} processed, "
                  f"{res.frames_dropped} dropped; {res.wall_s:.0f} s")
    console.print(f"report: {files.html}")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"
