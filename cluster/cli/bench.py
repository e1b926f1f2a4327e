"""``ssz bench``: benchmarks that measure and print JSON, so numbers can be compared run to run.

Each command runs on the embedded default (local store, private local Ray) and prints one JSON document
on stdout; progress goes to stderr. Nothing here asserts a time: compare runs on the same machine.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Annotated, Any

import typer

app = typer.Typer(help="Benchmarks that print JSON (compare runs on the same machine).", no_args_is_help=True)


def emit_bench(name: str, result: dict[str, Any], t0: float) -> None:
    """One JSON document: what ran where (host, CPUs, Python), how long, and the result."""

    from cluster.cli.common import write_stdout

    doc = {"bench": name, "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
           "wall_s": round(time.monotonic() - t0, 2), "result": result}
    write_stdout(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")


@app.command("serve")
def bench_serve(faces_per_size: Annotated[int, typer.Option(help="Faces per batch-size run.")] = 32,
                plates: Annotated[int, typer.Option(help="Plate frames per batch-size run.")] = 32,
                via_serve: Annotated[bool, typer.Option(help="Also measure through Ray Serve @serve.batch.")] = True,
                device: Annotated[str, typer.Option(help="cpu | cuda: the face models' device (dlib and "
                                                         "Tesseract stay on the CPU).")] = "cpu") -> None:
    """Faces/s and plates/s (per plate engine, batch 1 and 16) and latency, as ONE JSON document on stdout."""
    import contextlib

    from cluster.cli.common import connect_ray, fail
    from serve.devices import DeviceError, check_device
    from serve.face.bench import bench_faces, bench_faces_serve
    from serve.plate.bench import bench_plates

    try:
        check_device(device)
    except DeviceError as e:
        fail(e)
    t0 = time.monotonic()
    with contextlib.redirect_stdout(sys.stderr):  # the benches' own prints go to stderr: stdout holds one document
        out: dict[str, Any] = {"faces": bench_faces(faces_per_size=faces_per_size, device=device),
                               "plates": bench_plates(n_frames=plates)}
        if via_serve:
            connect_ray()
            out["faces_serve"] = bench_faces_serve(faces_per_size=faces_per_size)
    emit_bench("serve", out, t0)


@app.command("twin")
def bench_twin_cmd() -> None:
    """Snapping 1,000,000 GPS points to edges; snapshot write/read MB/s to the local S3 server vs local disk."""
    from cluster import store
    from twin.bench import bench_twin

    t0 = time.monotonic()
    store.up()
    emit_bench("twin", bench_twin(store.open_store()), t0)


@app.command("pipeline")
def bench_pipeline_cmd(only: Annotated[list[str] | None, typer.Option(
                           help="Run only these parts (repeat the option): decode, gate, faces, ray (the Ray actor "
                                "overhead), latency (live-mode alert latency). Default: all.")] = None,
                       load: Annotated[float, typer.Option(help="latency: offered load as a fraction of the "
                                                                "capacity measured first (0-1.5).")] = 0.7,
                       latency_s: Annotated[float, typer.Option(help="latency: seconds of live streaming.")] = 120.0
                       ) -> None:
    """Decode fps, motion-gate skip ratio, face events missed on vtest.avi, Ray overhead vs plain Python, and
    live-mode alert latency at 70% load (model time and the rest per stage apart)."""
    from actors.bench import PIPELINE_PARTS, bench_pipeline
    from cluster import store
    from cluster.cli.common import connect_ray, fail, reserve_stdout
    from cluster.config import shared_data_dir

    parts = list(only or PIPELINE_PARTS)
    bad = sorted(set(parts) - set(PIPELINE_PARTS))
    if bad:
        fail(ValueError(f"--only {', '.join(bad)}: not a part; choose from {', '.join(PIPELINE_PARTS)}"))
    if not 0 < load <= 1.5:
        fail(ValueError(f"--load {load}: give the offered load as a fraction of the capacity, e.g. 0.7"))
    if latency_s <= 0:
        fail(ValueError(f"--latency-s {latency_s}: give the seconds of live streaming, e.g. 120"))
    reserve_stdout()  # the one JSON document alone on stdout, whatever Ray and the servers print
    t0 = time.monotonic()
    settings = None
    if {"ray", "latency"} & set(parts):
        connect_ray()
    if "latency" in parts:
        store.up()
        settings = store.settings()
    emit_bench("pipeline", bench_pipeline(faces_dir=shared_data_dir() / "faces_deepface", parts=parts,
                                          store_settings=settings, load=load, latency_s=latency_s), t0)


@app.command("plan")
def bench_plan_cmd(city_time_limit_s: Annotated[float, typer.Option(help="Exact MCLP limit at city scale.")] = 60,
                   routing_time_limit_s: Annotated[float, typer.Option(help="OR-Tools routing limit.")] = 10) -> None:
    """MCLP at zone scale (exact) and city scale (617 pinned + 100 new), routing 40 checkpoints x 3 units."""
    from cluster.planning import bench_plans

    t0 = time.monotonic()
    emit_bench("plan", bench_plans(city_time_limit_s=city_time_limit_s, routing_time_limit_s=routing_time_limit_s), t0)


@app.command("fuzz")
def bench_fuzz(requests: Annotated[int, typer.Option(help="Malformed requests to send (at most 10,000).")] = 1000,
               url: Annotated[str | None, typer.Option(help="API URL on 127.0.0.1 (default: where `ssz api up` "
                                                            "deployed it).")] = None,
               seed: Annotated[int, typer.Option(help="Seed of the request mix.")] = 0,
               concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 8,
               hang_s: Annotated[float, typer.Option(help="An answer slower than this counts as a hang.")] = 10.0
               ) -> None:
    """Send malformed requests (bad tokens, headers, bodies, images, ids, dates, sizes) to the API on this
    machine; print JSON counts by status, 5xx answers, hangs and whether the API was alive after. Temporary
    users fuzz-<role> get tokens for the run (audited) and are revoked at the end; exit 1 on any 5xx or hang."""
    from cluster import serving, store
    from cluster.cli.common import fail
    from serve.fuzz import FuzzTargetError, run_fuzz
    from serve.roles import ROLES

    t0 = time.monotonic()
    store.up()
    target = url or (serving.url_file().read_text().strip() if serving.url_file().exists() else None)
    if target is None:
        fail("no API URL recorded: start it with `ssz api up` or pass --url http://127.0.0.1:PORT")
    tokens = {r: serving.issue_token(f"fuzz-{r}", r, actor="system:bench-fuzz") for r in ROLES}
    try:
        res = run_fuzz(target, tokens, requests=requests, seed=seed, concurrency=concurrency, hang_s=hang_s)
    except (FuzzTargetError, ValueError) as e:
        fail(e)
    finally:
        for r in ROLES:
            serving.revoke_token(f"fuzz-{r}", "bench fuzz finished", actor="system:bench-fuzz")
    emit_bench("fuzz", res, t0)
    if res["server_errors_5xx"] or res["hangs"] or not res["alive_after"]:
        raise typer.Exit(1)


@app.command("ingest")
def bench_ingest_cmd(pings: Annotated[int, typer.Option(min=1, help="GPS positions to post.")] = 50_000,
                     batch: Annotated[int, typer.Option(min=1, help="Positions per request.")] = 1000,
                     concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 4,
                     sos: Annotated[int, typer.Option(min=0, help="SOS presses to time (sequential; 0: "
                                                              "none).")] = 50,
                     seed: Annotated[int, typer.Option(help="Seed of the simulated positions.")] = 0,
                     city: Annotated[str, typer.Option(help="City whose command room to use (the API is "
                                                            "redeployed for it when it serves another).")] = "hatyai",
                     port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the API when this command "
                                                                             "deploys it.")] = 8000
                     ) -> None:
    """Field ingest through the HTTP API: GPS pings/s accepted and committed to a twin snapshot (target >= 5,000
    on 2 cores) and p50/p99 time from an SOS request to its alert in the stream (target p99 <= 500 ms). Uses
    the API `ssz api up` deployed (deploys it when none runs); temporary users bench-device and bench-operator
    get tokens for the run (audited) and are revoked at the end."""
    from cluster import ccoc, serving, store
    from cluster.cli.common import connect_ray, fail
    from serve.field_bench import bench_ingest

    t0 = time.monotonic()
    store.up()
    connect_ray()
    try:
        url = serving.ensure_up(city, port=port)
    except ValueError as e:
        fail(e)
    tokens = {r: serving.issue_token(f"bench-{r}", r, actor="system:bench-ingest") for r in ("device", "operator")}
    try:
        res = bench_ingest(url, tokens["device"], tokens["operator"], lambda: ccoc.commit(city), pings=pings,
                           batch=batch, concurrency=concurrency, sos=sos, seed=seed)
    finally:
        for r in tokens:
            serving.revoke_token(f"bench-{r}", "bench ingest finished", actor="system:bench-ingest")
    emit_bench("ingest", {"city": city, **res}, t0)


@app.command("chaos")
def bench_chaos(duration: Annotated[float, typer.Option(help="Seconds of streaming under faults.")] = 600.0,
                city: Annotated[str, typer.Option(help="City whose first cameras stream.")] = "hatyai",
                cameras: Annotated[int, typer.Option(help="Simulated CCTV cameras.")] = 64,
                plate_cameras: Annotated[int, typer.Option(help="Simulated plate cameras.")] = 4,
                cameras_per_shard: Annotated[int, typer.Option(help="Cameras per shard actor.")] = 8,
                fps: Annotated[float, typer.Option(help="Camera frame rate (every frame is sampled).")] = 1.0,
                shard_kill_every: Annotated[float, typer.Option(help="Kill a random shard every S seconds.")] = 30.0,
                sink_kill_every: Annotated[float, typer.Option(help="Kill the alert sink every S seconds.")] = 120.0,
                quiet: Annotated[float, typer.Option(help="No faults in the last S seconds.")] = 25.0,
                seed: Annotated[int, typer.Option(help="Seed of the chaos schedule.")] = 0) -> None:
    """The pipeline under faults with ground-truth alerts (no model): kill a random shard every 30 s, the alert
    sink every 2 min, restart the object store once; print expected / raised / lost / duplicated alerts, the
    slowest delivery and camera-offline alerts raised and recovered. Exit 1 when an alert was lost or duplicated."""
    from cluster import raycluster, store
    from cluster.chaos import ChaosConfig, run_chaos
    from cluster.cli.common import USER_ERRORS, fail, reserve_stdout

    try:  # options are checked before stdout is set aside (a refused option leaves the process as it was)
        cfg = ChaosConfig(city=city, duration_s=duration, cameras=cameras, plate_cameras=plate_cameras,
                          cameras_per_shard=cameras_per_shard, fps=fps, shard_kill_every_s=shard_kill_every,
                          sink_kill_every_s=sink_kill_every, quiet_s=min(quiet, max(0.0, duration) / 3), seed=seed)
    except USER_ERRORS as e:
        fail(e, options={"duration_s": "--duration", "shard_kill_every_s": "--shard-kill-every",
                         "sink_kill_every_s": "--sink-kill-every", "quiet_s": "--quiet", "cameras": "--cameras",
                         "plate_cameras": "--plate-cameras", "cameras_per_shard": "--cameras-per-shard",
                         "fps": "--fps", "seed": "--seed", "city": "--city"})
    reserve_stdout()  # the one JSON document alone on stdout, whatever Ray and the servers print
    t0 = time.monotonic()
    try:
        store.up()
        raycluster.connect()
        rep = run_chaos(cfg)
    except USER_ERRORS as e:
        fail(e)
    emit_bench("chaos", rep.model_dump(), t0)
    if rep.lost or rep.duplicated:
        raise typer.Exit(1)


@app.command("stages")
def bench_stages(ctx: typer.Context,
                 models: Annotated[bool, typer.Option(help="Also measure the face and plate models.")] = True,
                 calibrate: Annotated[str, typer.Option(help="Calibration runs CAMERASxFPS,... (ssz run --detect "
                                                             "truth, hatyai): shard, sink and control-plane terms; "
                                                             "'' = none.")] = "32x10,96x1,128x0.5",
                 calibrate_s: Annotated[float, typer.Option(help="Seconds measured per calibration run.")] = 45.0,
                 from_run: Annotated[list[str] | None, typer.Option(help="Fit recorded `ssz run --detect truth --json` "
                                                                         "files instead (repeat, 2 or more).")] = None,
                 device: Annotated[str, typer.Option(help="cpu | cuda for the model stages.")] = "cpu",
                 out: Annotated[str | None, typer.Option(help="Where to write the costs (default: "
                                                              "$SSZ_HOME/bench/stage_costs.json).")] = None) -> None:
    """Per-stage costs on this machine (decode, draw, gate, prepare, face detect/embed, plate read per frame,
    face or plate) and the shard, sink and control-plane overheads fitted on short calibration runs, written as
    JSON for `ssz plan capacity` and printed."""
    from pathlib import Path

    from click.core import ParameterSource

    from cluster import raycluster, store
    from cluster.capacity import costs_path, load_run
    from cluster.cli.common import USER_ERRORS, fail, require_verified_audits, warn
    from cluster.stagecosts import calibration_runs, measure_stages, parse_points, write_costs
    from serve.devices import check_device

    t0 = time.monotonic()
    try:
        check_device(device)  # before the calibration runs start anything
        if from_run:
            if ctx.get_parameter_source("calibrate") is not ParameterSource.DEFAULT:
                warn("--calibrate is ignored: --from-run gives the calibration runs")
            runs = [load_run(Path(f)) for f in from_run]  # each file checked before anything is measured
        elif points := parse_points(calibrate):
            store.up()
            require_verified_audits()
            raycluster.connect()
            runs = calibration_runs(points, calibrate_s)
        else:
            runs = []
        costs = measure_stages(models=models, runs=runs, device=device)
    except USER_ERRORS as e:
        fail(e)
    path = write_costs(costs, Path(out) if out else costs_path())
    emit_bench("stages", {"written": str(path), **costs.model_dump()}, t0)
