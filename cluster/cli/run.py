"""``ssz run`` and ``ssz status``: the city's camera pipeline on the cluster, and its numbers per camera."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from cluster.cli.common import (
    USER_ERRORS,
    CityOpt,
    JsonOpt,
    connect_ray,
    console,
    emit,
    fail,
    require_verified_audits,
    reserve_stdout,
    write_stdout,
)
from cluster.config import MEGAPIXELS_SPAN

if TYPE_CHECKING:
    from actors.shard import ShardStats


def status_table(stats: list[ShardStats]) -> Table:
    """The per-camera status table of running shards (:func:`cluster.sharding.status`); a failed or offline camera's
    health says why (its last error: "no frame of ... could be decoded", "Connection refused" ...). Ids and errors
    are plain text, never Rich markup (a camera id or error holding "[/" made Rich raise MarkupError)."""
    t = Table("shard", "node", "camera", "health", "fps", "gate pass", "sampled", "dropped", "detections", "alerts",
              title="camera pipeline")
    for sh in stats:
        if sh.error:
            t.add_row(Text(sh.shard_id), "", "", Text(sh.error, style="red"), *[""] * 6)
        for c in sh.cameras:
            health = Text(c.health)
            if c.health in ("failed", "offline") and c.last_error:
                health = Text(f"{c.health}: {c.last_error}", style="red")
            t.add_row(Text(sh.shard_id), (sh.node_id or "")[:8], Text(c.camera_id), health, f"{c.fps_decoded:.1f}",
                      f"{c.gate_pass_ratio:.2f}", str(c.sampled), str(c.dropped), str(c.detections), str(c.alerts))
    return t


def parse_cameras(value: str, plate_cameras: str | None) -> tuple[int | None, int | None]:
    """``--cameras N|all`` and ``--plate-cameras N|all`` as counts (None = all); ``--cameras all`` alone
    means every fixed camera of the city, plate cameras included; otherwise 2 plate cameras.

    Raises
    ------
    ValueError
        When a value is neither ``all`` nor a positive whole number (0 for plate cameras).
    """
    def count(v: str, name: str, least: int) -> int | None:
        if v.strip().lower() == "all":
            return None
        if not v.strip().isdigit() or int(v) < least:
            raise ValueError(f"{name} must be 'all' or a whole number >= {least}, not {v!r}")
        return int(v)

    cams = count(value, "--cameras", 1)
    if plate_cameras is None:
        return cams, None if cams is None else 2
    return cams, count(plate_cameras, "--plate-cameras", 0)


def run_cmd(city: CityOpt = "hatyai",
            cameras: Annotated[str, typer.Option(help="First N face cameras, or 'all' (every fixed camera, plate "
                                                      "cameras included); this 2-core machine: ~8 with the "
                                                      "models, all 665 of Hat Yai with --detect truth.")] = "8",
            plate_cameras: Annotated[str | None, typer.Option(help="First N plate cameras, or 'all' (default: 2; "
                                                                   "all with --cameras all).")] = None,
            source: Annotated[str, typer.Option(help="sim | file (--video looped) | rtsp (--url-template)")] = "sim",
            url_template: Annotated[str | None, typer.Option(help="rtsp: rtsp://nvr.internal/{camera_id}")] = None,
            video: Annotated[str | None, typer.Option(help="file: the video every camera loops (a path or "
                                                           "file:// URL; default: opencv-doc's vtest.avi)")] = None,
            duration: Annotated[float, typer.Option(help="Seconds to run (0 = until Ctrl-C).")] = 60.0,
            detect: Annotated[str, typer.Option(help="faces (the models on Serve) | truth (read the simulated "
                                                     "cameras' ground truth: no model) | none")] = "faces",
            fps: Annotated[float | None, typer.Option(help="sim: camera frame rate (default: the city's, at most "
                                                           "10); a reduced rate lets one machine carry a city")] = None,
            sample_fps: Annotated[float | None, typer.Option(help="frames per second per camera sent to the "
                                                                  "detector (default: the city's)")] = None,
            wanted_every: Annotated[int, typer.Option(help="--detect truth: one walker in N is listed")] = 10,
            max_megapixels: Annotated[float | None, typer.Option(help="file/rtsp: largest picture a camera may "
                                                                      f"send, MP ({MEGAPIXELS_SPAN}; default: the "
                                                                      "city's cameras.max_megapixels, else 130); "
                                                                      "bigger ones are refused")] = None,
            as_json: JsonOpt = False) -> None:
    """Run the city's camera pipeline on the cluster: shards, models (or the ground truth), alert sink; prints
    status, and at the end the run's numbers (memory and CPU per camera, control plane, shard start)."""
    from cluster import pipeline, raycluster, store
    from cluster.config import load_city

    if as_json:
        # Ray prints its workers' and raylet's stdout lines to ours, and goes on until the process exits (at 665
        # cameras they broke the JSON): from here on they land on stderr, the JSON document alone on stdout
        reserve_stdout()
    try:
        n_cams, n_plates = parse_cameras(cameras, plate_cameras)
        run_cfg = pipeline.RunConfig(city=city, cameras=n_cams, plate_cameras=n_plates, source=source,
                                     url_template=url_template, duration_s=duration,
                                     **({"video": video} if video is not None else {}), detect=detect, fps=fps,
                                     sample_fps=sample_fps, wanted_every=wanted_every, max_megapixels=max_megapixels)
        # a bad --video or --url-template fails before the store and Ray start
        city_cfg = load_city(run_cfg.city)
        pipeline.check_camera_counts(run_cfg, city_cfg)
        pipeline.check_source(run_cfg, city_cfg)
        store.up()
        require_verified_audits()
        if raycluster.known_address() is None:
            raycluster.up()  # a persistent head, so `ssz status` can look from another terminal
        raycluster.connect()
        summary = pipeline.run(run_cfg, report=None if as_json else (lambda st: console.print(status_table(st))),
                               source_checked=True, city=city_cfg)
    except USER_ERRORS as e:
        fail(e, options={"duration_s": "--duration", "sample_fps": "--sample-fps", "fps": "--fps",
                         "wanted_every": "--wanted-every", "max_megapixels": "--max-megapixels",
                         "url_template": "--url-template", "video": "--video", "source": "--source",
                         "detect": "--detect"})
    emit(summary, as_json)  # to the stdout reserve_stdout() set aside (Ray's log thread goes on until exit)


def status_cmd(as_json: JsonOpt = False) -> None:
    """Per-camera fps, gate ratio, dropped frames, shard placement and camera health of the running pipeline."""
    from cluster import pipeline, raycluster

    if raycluster.known_address() is None:
        fail("no cluster recorded: start the pipeline with `ssz run` (or set SSZ_RAY_ADDRESS)")
    if as_json:
        reserve_stdout()
    connect_ray()
    stats = pipeline.status()
    if as_json:
        write_stdout(json.dumps([s.model_dump() for s in stats], indent=2, default=str) + "\n")
    elif not stats:
        console.print("no camera shards are running")
    else:
        console.print(status_table(stats))
