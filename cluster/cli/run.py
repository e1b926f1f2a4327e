"""``ssz run`` and ``ssz status``: the city's camera pipeline on the cluster, and its numbers per camera."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cluster.cli.common import USER_ERRORS, CityOpt, JsonOpt, console, emit, fail, require_verified_audits

if TYPE_CHECKING:
    from actors.shard import ShardStats


def status_table(stats: list[ShardStats]) -> Table:
    """The per-camera status table of running shards (:func:`cluster.sharding.status`)."""
    t = Table("shard", "node", "camera", "health", "fps", "gate pass", "sampled", "dropped", "detections", "alerts",
              title="camera pipeline")
    for sh in stats:
        if sh.error:
            t.add_row(sh.shard_id, "", "", f"[red]{sh.error}[/]", *[""] * 6)
        for c in sh.cameras:
            t.add_row(sh.shard_id, (sh.node_id or "")[:8], c.camera_id, c.health, f"{c.fps_decoded:.1f}",
                      f"{c.gate_pass_ratio:.2f}", str(c.sampled), str(c.dropped), str(c.detections), str(c.alerts))
    return t


def run_cmd(city: CityOpt = "hatyai",
            cameras: Annotated[int | None, typer.Option(help="First N face cameras (this 2-core machine: ~8).")] = 8,
            plate_cameras: Annotated[int | None, typer.Option(help="First N plate cameras.")] = 2,
            source: Annotated[str, typer.Option(help="sim | file (vtest.avi looped) | rtsp")] = "sim",
            url_template: Annotated[str | None, typer.Option(help="rtsp: rtsp://nvr.internal/{camera_id}")] = None,
            duration: Annotated[float, typer.Option(help="Seconds to run (0 = until Ctrl-C).")] = 60.0,
            detect: Annotated[str, typer.Option(help="faces (Serve face app) | none")] = "faces",
            as_json: JsonOpt = False) -> None:
    """Run the city's camera pipeline on the cluster: shards, face model, alert sink; prints status."""
    from cluster import pipeline, raycluster, store

    try:
        run_cfg = pipeline.RunConfig(city=city, cameras=cameras, plate_cameras=plate_cameras, source=source,
                                     url_template=url_template, duration_s=duration, detect=detect)
        store.up()
        require_verified_audits()
        if raycluster.known_address() is None:
            raycluster.up()  # a persistent head, so `ssz status` can look from another terminal
        raycluster.connect()
        summary = pipeline.run(run_cfg, report=None if as_json else (lambda st: console.print(status_table(st))))
    except (*USER_ERRORS, raycluster.RayError) as e:
        fail(e)
    emit(summary, as_json)


def status_cmd(as_json: JsonOpt = False) -> None:
    """Per-camera fps, gate ratio, dropped frames, shard placement and camera health of the running pipeline."""
    from cluster import pipeline, raycluster

    if raycluster.known_address() is None:
        fail("no cluster recorded: start the pipeline with `ssz run` (or set SSZ_RAY_ADDRESS)")
    raycluster.connect()
    stats = pipeline.status()
    if as_json:
        sys.stdout.write(json.dumps([s.model_dump() for s in stats], indent=2, default=str) + "\n")
    elif not stats:
        console.print("no camera shards are running")
    else:
        console.print(status_table(stats))
