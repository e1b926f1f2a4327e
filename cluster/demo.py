"""``ssz demo``: the whole product on the embedded default, on a simulated day of the city.

1. the object store (embedded SeaweedFS unless ``SSZ_S3_ENDPOINT`` points at MinIO) and Ray (a private local
   Ray, or the cluster in ``SSZ_RAY_ADDRESS``);
2. the city's twin: street graph (GeoParquet) and registry layers in a first snapshot, the registry also as
   ``s3://twin/cities/<id>/registry/*.parquet``;
3. the recognition models on Ray Serve (face: MTCNN + dlib with the warrant watchlist; plate: Tesseract Thai
   with the hotlist) behind the token-protected API;
4. a simulated day (:mod:`cluster.sim`): people, some wanted, and vehicles, some hot-listed, moving on
   the street graph; ground truth for every camera of the city; the lists enrolled through the API;
5. the rendered cameras streamed through the camera shards into the models and the alert sink: alerts in the
   evidence bucket, the alert records and the twin;
6. the patrol rounds, QR scans and SOS presses of the day committed with the alerts as a twin snapshot;
7. the evaluation against ground truth (report with plots), a self-contained kepler.gl map of the snapshot
   and a short text summary.

``quick`` stops after step 2 (no models, no streaming): the foundation check. The city (config, street graph,
registry) is loaded once and handed to every step.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cluster import raycluster, store
from cluster.city import CityModel
from cluster.config import load_city
from cluster.state import state_dir
from twin.objectstore import TWIN_BUCKET

if TYPE_CHECKING:
    from actors.shard import ShardStats
    from cluster.sim.city import SimConfig


class DemoSummary(BaseModel):
    """What the demo did and where its outputs are."""

    city: str
    station: str
    store_endpoint: str
    buckets: list[str]
    ray: str
    ray_resources: dict[str, float]
    graph_nodes: int
    graph_edges: int
    graph_source: str
    cameras: dict[str, int]
    cameras_in_zone: int
    places: dict[str, int]
    objects: list[str]
    outputs: list[str]
    seconds: float
    snapshot: str | None = None
    rendered_cameras: list[str] = []
    simulation: dict[str, Any] = {}
    evaluation: list[dict[str, Any]] = []
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    alerts: int = 0
    field_feed: dict[str, Any] = {}
    console_url: str | None = None


def _table_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def run_demo(city_id: str, out: str | None = None, console: Console | None = None, *, quick: bool = False,
             face_cameras: int = 4, plate_cameras: int = 2, stream_s: float = 60.0, seed: int = 0,
             api_url: str | None = None, port: int = 8000) -> DemoSummary:
    """Run the main job for one city and return its summary (also printed to ``console``); ``port`` is where the
    API and the console listen when the demo deploys them (an ``api_url`` or an API already running is used as
    it is).

    Raises
    ------
    cluster.config.ConfigError, twin.objectstore.StoreError, ValueError, FileNotFoundError
        A bad city or option (checked before anything starts), an unreachable store, missing shared data.
    """
    from cluster.citytwin import build_twin
    from cluster.sharding import ensure_no_shards
    from cluster.sim.city import SimConfig, next_day

    console = console or Console()
    t0 = time.monotonic()
    city = load_city(city_id)
    sim_cfg = None if quick else SimConfig(  # checked before anything starts
        city=city.id, face_cameras=face_cameras, plate_cameras=plate_cameras, stream_s=stream_s,
        scenario={"seed": seed, "day": next_day(city.id)})
    out_dir = Path(out) if out else state_dir("out") / city.id
    out_dir.mkdir(parents=True, exist_ok=True)
    objects: list[str] = []
    outputs: list[str] = []
    extra: dict[str, Any] = {}
    steps = 4 if quick else 9
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), console=console,
                  transient=False) as prog:
        task = prog.add_task("object store: starting", total=steps)
        st = store.up()
        prog.update(task, advance=1, description=f"object store: up at {st.endpoint}")
        ray_desc = raycluster.connect()
        if sim_cfg is not None:  # it streams: a running pipeline is refused before the twin commits and lists
            ensure_no_shards()
        res = raycluster.describe().resources
        prog.update(task, advance=1, description=f"ray: {ray_desc}")
        model = CityModel.load(city)
        G, reg = model.graph, model.registry
        twin = build_twin(model, message="ssz demo: street graph and registry")
        prog.update(task, advance=1, description=f"twin: street graph {twin['graph']['nodes']} nodes, snapshot "
                                                 f"{twin['snapshot']}")
        s3 = store.open_store()
        for name, frame in (("cameras", reg.cameras_frame()), ("places", reg.places_frame())):
            data = _table_bytes(pa.Table.from_pandas(frame, preserve_index=False))
            key = f"cities/{city.id}/registry/{name}.parquet"
            s3.put_bytes(TWIN_BUCKET, key, data)
            objects.append(f"s3://{TWIN_BUCKET}/{key}")
            path = out_dir / f"{name}.parquet"
            path.write_bytes(data)
            outputs.append(str(path))
        prog.update(task, advance=1, description=f"registry: {len(reg.cameras)} cameras, {len(reg.places)} places")
        if sim_cfg is not None:
            extra = _simulate(prog, task, model, out_dir, outputs, sim_cfg, api_url, port)

    cams = reg.cameras_frame()
    places = reg.places_frame()
    summary = DemoSummary(
        city=city.id, station=city.station_th, store_endpoint=st.endpoint,
        buckets=[f"{b.name} (versioning={b.versioning or 'off'}, lock={b.object_lock or 'none'})"
                 for b in st.buckets],
        ray=ray_desc, ray_resources=res, graph_nodes=len(G), graph_edges=G.number_of_edges(),
        graph_source=city.street_graph.kind,
        cameras={str(k): int(v) for k, v in cams["kind"].value_counts().sort_index().items()},
        cameras_in_zone=int(cams["in_zone"].sum()),
        places={str(k): int(v) for k, v in places["kind"].value_counts().sort_index().items()},
        objects=objects, outputs=outputs, seconds=round(time.monotonic() - t0, 1), **extra,
    )
    text = _summary_table(summary, city, st.kind)
    console.print(text)
    with (out_dir / "summary.txt").open("w", encoding="utf-8") as fh:
        Console(file=fh, width=110, color_system=None).print(text)
    return summary


def _simulate(prog: Progress, task: Any, city: CityModel, out_dir: Path, outputs: list[str], cfg: SimConfig,
              api_url: str | None, port: int) -> dict[str, Any]:
    """Steps 4-9: models, scenario, streaming, twin snapshot, evaluation report, map."""
    from actors.sources import ScenarioSource
    from cluster import ccoc, serving
    from cluster.citymap import store_layers, write_map
    from cluster.sim import city as simcity
    from cluster.sim import run as simrun
    from cluster.sim.evaluation import evaluate
    from cluster.sim.report import write_report
    from cluster.sim.scripts import scripts

    city_id = city.id

    prog.update(task, description="models: deploying face + plate recognition on Ray Serve")
    api_url = api_url or serving.ensure_up(city_id, port=port)
    prog.update(task, advance=1, description="models: ready")
    sim = simcity.build(cfg, city)
    n_sight = len(sim.scenario.sightings)
    prog.update(task, advance=1, description=f"scenario: {len(sim.scenario.trips)} trips, {n_sight} sightings "
                                             f"in the city; rendering {', '.join(sim.rendered_cameras)}")
    scripted = scripts(sim)
    total_frames = sum(len(ScenarioSource(s).timeline()) for s in scripted[0].values())
    stream = prog.add_task("streaming: starting shards", total=max(1, total_frames))

    def report(stats: list[ShardStats]) -> None:
        cams = [c for s in stats for c in s.cameras]
        prog.update(stream, completed=sum(c.decoded for c in cams),
                    description=f"streaming: {sum(c.decoded for c in cams)} frames, "
                                f"{sum(c.processed for c in cams)} to the models, {sum(c.alerts for c in cams)} alerts")

    run = simrun.run(sim, api_url=api_url, report=report, scripted=scripted)
    prog.update(stream, completed=total_frames, description="streaming: done")
    prog.update(task, advance=1, description=f"alerts: {len(run.result.alerts)} in the store")
    fed = _feed(sim, api_url)
    ccoc.commit(city_id, f"ssz demo: field inputs of the simulated day {cfg.scenario.day}")
    ccoc.commit_alerts(city_id, f"ssz demo: alerts of the simulated day {cfg.scenario.day}")
    snap = simrun.commit_layers(sim, f"ssz demo: patrol trips of the simulated day {cfg.scenario.day} of {city_id}",
                                only={"patrol_trips"})
    prog.update(task, advance=1, description=f"twin: snapshot {snap} with alerts, patrols, QR scans and SOS "
                                             f"({fed.requests} requests through the field API)")
    res = evaluate(sim, run)
    files = write_report(res, out_dir / "report")
    outputs += [files.html, files.markdown]
    layers, _, _ = store_layers(city_id, snap)
    m = write_map(city, out_dir / "map.html", layers=layers)
    outputs.append(m.out)
    prog.update(task, advance=1, description=f"map and report written to {out_dir}")
    return {"snapshot": snap, "rendered_cameras": sim.rendered_cameras, "simulation": res.scenario,
            "field_feed": fed.model_dump(), "console_url": f"{api_url}/console",
            "evaluation": res.table(), "latency_p50_ms": res.latency_p50_ms, "latency_p99_ms": res.latency_p99_ms,
            "alerts": len(res.alerts)}


def _feed(sim: Any, api_url: str) -> Any:
    """The simulated day's GPS, QR scans and SOS presses through the field-ingest API (a device token)."""
    import httpx

    from cluster import serving
    from cluster.sim.feed import feed

    token = serving.issue_token("demo-field-device", "device", actor="system:demo")
    with httpx.Client(base_url=api_url, timeout=300, headers={"Authorization": f"Bearer {token}"}) as client:
        return feed(sim, client)


def serve_console(summary: DemoSummary, console: Console) -> None:
    """Print the console's URL and an operator token, then keep everything running until Ctrl-C; on Ctrl-C
    the field inputs accepted since the last commit go into the twin before the process ends."""
    from cluster import ccoc, serving

    if not summary.console_url:
        return
    token = serving.issue_token("demo-operator", "operator", actor="system:demo")
    console.print(f"\n[bold]CCOC console:[/bold] {summary.console_url}\n[bold]operator token[/bold] (log in with it; "
                  f"shown once): {token}\nThe console and the API keep running; press Ctrl-C to stop.")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        snap = ccoc.shutdown(summary.city)
        console.print(f"stopped; field inputs committed to snapshot {snap}" if snap else "stopped")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def _summary_table(s: DemoSummary, city: Any, store_kind: str) -> Table:
    t = Table(title=f"{city.name} ({city.station_th}) — Safety Zone demo", show_header=False)
    t.add_row("object store", f"{store_kind} at http://{s.store_endpoint}")
    for b in s.buckets:
        t.add_row("  bucket", b)
    t.add_row("ray", f"{s.ray}; resources {s.ray_resources}")
    t.add_row("street graph", f"{s.graph_nodes} nodes, {s.graph_edges} edges ({s.graph_source})")
    t.add_row("cameras", ", ".join(f"{k}: {v}" for k, v in s.cameras.items())
              + f" ({s.cameras_in_zone} in the {city.zone.area_km2:g} km² zone)")
    t.add_row("places", ", ".join(f"{k}: {v}" for k, v in s.places.items()))
    if s.rendered_cameras:
        sim = s.simulation
        t.add_row("simulated day", f"{sim.get('day')}: {sim.get('persons (wanted / not)')} persons, "
                                   f"{sim.get('vehicles (hot-listed)')} vehicles, {sim.get('trips')} trips")
        t.add_row("ground truth", f"{sim.get('sightings in the whole city')} sightings over all "
                                  f"{sim.get('cameras in the city')} fixed cameras")
        t.add_row("rendered live", f"{len(s.rendered_cameras)} cameras ({sim.get('simulated footage (camera-hours)')}"
                                   " camera-hours of footage): this machine's share; scale with "
                                   "--face-cameras/--plate-cameras on a bigger cluster (SSZ_RAY_ADDRESS)")
        for m in s.evaluation:
            t.add_row(f"{m['kind']} alerts", f"recall {_pct(m['recall'])} of {m['recognisable']} recognisable passes, "
                                              f"precision {_pct(m['precision'])} of {m['alerts']} alerts, "
                                              f"{m['false_alerts']} false; unlisted alerted: {m['unlisted_alerted']}")
        lat = "–" if s.latency_p50_ms is None else f"p50 {s.latency_p50_ms:.0f} ms, p99 {s.latency_p99_ms:.0f} ms"
        t.add_row("alert latency", f"{lat} (frame decoded -> alert written)")
        t.add_row("snapshot", str(s.snapshot))
        f = s.field_feed
        if f:
            t.add_row("field ingest", f"{f['gps_accepted']} GPS positions, {f['qr_accepted']} QR scans, "
                                      f"{len(f['sos_alerts'])} SOS presses through the API ({f['requests']} "
                                      f"requests, the day replayed as of now)")
        if s.console_url:
            t.add_row("console", f"{s.console_url} (while the demo keeps serving; after it ends, "
                                 "`ssz api up` serves it again)")
    for o in s.objects:
        t.add_row("object", o)
    for o in s.outputs:
        t.add_row("file", o)
    t.add_row("time", f"{s.seconds} s")
    return t
