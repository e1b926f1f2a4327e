"""``ssz demo``: the main job on the embedded default.

Brings up the object store (embedded SeaweedFS unless ``SSZ_S3_ENDPOINT`` points at MinIO), a local Ray
(or the cluster in ``SSZ_RAY_ADDRESS``), loads the city's street graph, builds its camera and place
registry, stores the registry in the ``twin`` bucket and prints what is where.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cluster import raycluster, store
from cluster.city import load_city_graph
from cluster.config import load_city
from cluster.registry import build_registry
from cluster.state import state_dir
from twin.objectstore import TWIN_BUCKET


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


def _table_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def run_demo(city_id: str, out: str | None = None, console: Console | None = None) -> DemoSummary:
    """Run the main job for one city and return its summary (also printed to ``console``)."""
    console = console or Console()
    t0 = time.monotonic()
    city = load_city(city_id)
    out_dir = Path(out) if out else state_dir("out") / city.id
    out_dir.mkdir(parents=True, exist_ok=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=False) as prog:
        task = prog.add_task("object store: starting", total=4)
        st = store.up()
        prog.update(task, advance=1, description=f"object store: up at {st.endpoint}")
        ray_desc = raycluster.connect()
        res = raycluster.describe().resources
        prog.update(task, advance=1, description=f"ray: {ray_desc}")
        G = load_city_graph(city)
        prog.update(task, advance=1,
                    description=f"street graph: {len(G)} nodes, {G.number_of_edges()} edges")
        reg = build_registry(city, G)
        s3 = store.open_store()
        objects = []
        outputs = []
        for name, frame in (("cameras", reg.cameras_frame()), ("places", reg.places_frame())):
            data = _table_bytes(pa.Table.from_pandas(frame, preserve_index=False))
            key = f"cities/{city.id}/registry/{name}.parquet"
            s3.put_bytes(TWIN_BUCKET, key, data)
            objects.append(f"s3://{TWIN_BUCKET}/{key}")
            path = out_dir / f"{name}.parquet"
            path.write_bytes(data)
            outputs.append(str(path))
        prog.update(task, advance=1, description=f"registry: {len(reg.cameras)} cameras, {len(reg.places)} places")

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
        objects=objects, outputs=outputs, seconds=round(time.monotonic() - t0, 1),
    )
    t = Table(title=f"{city.name} ({city.station_th}) — what is where", show_header=False)
    t.add_row("object store", f"{st.kind} at http://{st.endpoint}")
    for b in summary.buckets:
        t.add_row("  bucket", b)
    t.add_row("ray", f"{ray_desc}; resources {res}")
    t.add_row("street graph", f"{summary.graph_nodes} nodes, {summary.graph_edges} edges ({summary.graph_source})")
    t.add_row("cameras", ", ".join(f"{k}: {v}" for k, v in summary.cameras.items())
              + f" ({summary.cameras_in_zone} in the {city.zone.area_km2:g} km² zone)")
    t.add_row("places", ", ".join(f"{k}: {v}" for k, v in summary.places.items()))
    for o in objects:
        t.add_row("object", o)
    for o in outputs:
        t.add_row("file", o)
    t.add_row("time", f"{summary.seconds} s")
    console.print(t)
    return summary
