"""``ssz bench twin``: snapping throughput and snapshot write/read speed, S3 versus local disk.

:func:`bench_twin` measures and returns a JSON-able dict; it asserts nothing about speed.

- snapping: 1,000,000 GPS fixes (points along real streets of the Chiang Mai extract with 8 m GPS noise,
  or a generated town when the shared data is absent) snapped with the cached STRtree in one call;
  the same points through ``osmnx.distance.nearest_edges`` one call per fix (what a naive stream
  handler does) on a small sample, and through osmnx's best use, ``nearest_edges`` vectorised (one call
  with all points), side by side with the ratio.
- snapshots: a twin with ``pings`` patrol GPS pings and ``alerts`` alerts committed as a snapshot to the
  S3 store and read back, versus the same Parquet objects written to and read from a local folder.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import osmnx as ox
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from twin import graph
from twin.layers import TwinState
from twin.objectstore import Store
from twin.snap import EdgeIndex

CHIANGMAI = "osm_thai_cities/chiangmai_suthep_nimman_roads.osm.gz"


def _graph(shared_data: Path | None) -> tuple[nx.MultiDiGraph, str]:
    d = shared_data or Path(os.environ.get("SSZ_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared/data"))
    p = Path(d) / CHIANGMAI
    if p.exists():
        return graph.from_osm_file(p), f"Chiang Mai OSM ({p.name})"
    return graph.generated(98.968, 18.799, extent_m=3000), "generated town (shared data not found)"


def gps_points(idx: EdgeIndex, n: int, noise_m: float = 8.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` WGS84 fixes along the index's streets (length-weighted) with Gaussian GPS noise."""
    rng = np.random.default_rng(seed)
    lengths = shapely.length(idx.geoms)
    which = rng.choice(len(lengths), size=n, p=lengths / lengths.sum())
    pts = shapely.line_interpolate_point(idx.geoms[which], rng.uniform(0, 1, n), normalized=True)
    x = shapely.get_x(pts) + rng.normal(0, noise_m, n)
    y = shapely.get_y(pts) + rng.normal(0, noise_m, n)
    lon, lat = idx._to_metric.transform(x, y, direction="INVERSE")
    return np.asarray(lon), np.asarray(lat)


def bench_snap(G: nx.MultiDiGraph, n: int = 1_000_000, naive_sample: int = 200,
               peer: bool = True) -> dict[str, Any]:
    """Points/s of vectorised snapping (index build included separately), of per-point osmnx calls and (``peer``)
    of osmnx's vectorised ``nearest_edges`` on the same points (its STRtree build included, as in every call)."""
    t = time.perf_counter()
    idx = EdgeIndex(G)
    build_s = time.perf_counter() - t
    lon, lat = gps_points(idx, n)
    t, c = time.perf_counter(), time.process_time()
    res = idx.snap(lon, lat)
    snap_s, snap_cpu = time.perf_counter() - t, time.process_time() - c
    x, y = idx.to_metric(lon[:naive_sample], lat[:naive_sample])
    P = graph.project(G, idx.crs.to_epsg() or 32647)
    t = time.perf_counter()
    for i in range(naive_sample):
        ox.distance.nearest_edges(P, float(x[i]), float(y[i]))
    naive_s = time.perf_counter() - t
    peer_out: dict[str, Any] = {}
    if peer:
        X, Y = idx.to_metric(lon, lat)
        t = time.perf_counter()
        edges = ox.distance.nearest_edges(P, np.asarray(X, dtype=float), np.asarray(Y, dtype=float))
        peer_s = time.perf_counter() - t
        peer_u = np.asarray([e[0] for e in edges])
        same = float(np.mean((peer_u == res.u) | (peer_u == res.v)))
        peer_out = {"peer": "osmnx.distance.nearest_edges, vectorised (one call, the same points, projected graph)",
                    "peer_s": round(peer_s, 3), "peer_points_per_s": round(n / peer_s),
                    "ours_points_per_s": round(n / snap_s), "ratio_ours_to_peer": round(peer_s / snap_s, 2),
                    "same_edge_share": round(same, 4)}
    return {**peer_out,
        "points": n, "edges": len(idx), "index_build_s": round(build_s, 3), "snap_s": round(snap_s, 3),
        "points_per_s": round(n / snap_s), "threads": os.cpu_count(),
        # CPU seconds over all threads: comparable across machines that are busy with other work.
        "snap_cpu_s": round(snap_cpu, 3), "points_per_cpu_s": round(n / max(snap_cpu, 1e-9)),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "median_distance_m": round(float(np.nanmedian(res.distance_m)), 2),
        "osmnx_nearest_edges_per_point_points_per_s": round(naive_sample / naive_s, 1),
        "speedup_vs_per_point_osmnx": round((n / snap_s) / (naive_sample / naive_s)),
    }


def _twin(city: str, G: nx.MultiDiGraph, pings: int, alerts: int) -> TwinState:
    idx = EdgeIndex(G)
    lon, lat = gps_points(idx, pings, seed=1)
    r = idx.snap(lon, lat)
    t0 = np.datetime64("2021-12-01T00:00:00", "ms")
    st = TwinState(city)
    st.append_table("patrol_pings", pa.table({
        "unit_id": pa.array(np.char.add("unit-", (np.arange(pings) % 8).astype(str))),
        "ts": pa.array(t0 + np.arange(pings).astype("timedelta64[ms]") * 500, pa.timestamp("ms", tz="UTC")),
        "speed_mps": pa.array(np.random.default_rng(2).uniform(0, 14, pings).astype(np.float32)),
        "lon": lon, "lat": lat, "edge_u": r.u, "edge_v": r.v, "edge_key": r.key.astype(np.int32),
        "edge_offset_m": r.offset_m}), strict=True)
    a_lon, a_lat = gps_points(idx, alerts, seed=3)
    st.append_table("alerts", pa.table({
        "alert_id": pa.array([f"face-{i:08d}" for i in range(alerts)]),
        "camera_id": pa.array([f"cam-{i % 150:04d}" for i in range(alerts)]),
        "ts": pa.array(t0 + np.arange(alerts).astype("timedelta64[s]"), pa.timestamp("ms", tz="UTC")),
        "kind": pa.array(["face"] * alerts), "status": pa.array(["new"] * alerts),
        "score": pa.array(np.full(alerts, 0.9, np.float32)), "lon": a_lon, "lat": a_lat}), strict=True)
    return st


def bench_snapshots(store: Store | None, G: nx.MultiDiGraph, pings: int = 2_000_000,
                    alerts: int = 100_000) -> dict[str, Any]:
    """Snapshot write and read MB/s to the S3 store and to a local folder (same Parquet objects)."""
    from twin.snapshots import SnapshotStore, _parquet

    st = _twin("bench", G, pings, alerts)
    tables = {n: t for n, t in st.tables().items() if t.num_rows}
    out: dict[str, Any] = {"rows": {n: t.num_rows for n, t in tables.items()}}
    # Local disk: serialise, write and fsync each object; read back and parse.
    with tempfile.TemporaryDirectory(prefix="ssz-bench-") as tmp:
        t = time.perf_counter()
        size = 0
        for n, tab in tables.items():
            data = _parquet(tab)
            size += len(data)
            with open(Path(tmp) / f"{n}.parquet", "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        w = time.perf_counter() - t
        t = time.perf_counter()
        for n in tables:
            pq.read_table(io.BytesIO((Path(tmp) / f"{n}.parquet").read_bytes()))
        r = time.perf_counter() - t
    mb = size / 1e6
    out["parquet_mb"] = round(mb, 2)
    out["local_disk"] = {"write_mb_s": round(mb / w, 1), "read_mb_s": round(mb / r, 1),
                         "write_s": round(w, 3), "read_s": round(r, 3)}
    if store is None:
        out["s3"] = {"skipped": "no object store given (ssz bench twin passes the running store)"}
        return out
    snaps = SnapshotStore(store, f"bench-{uuid.uuid4().hex[:8]}")
    snaps.check_conditional_writes()
    t = time.perf_counter()
    man = snaps.create(tables, message="bench")
    w = time.perf_counter() - t
    t = time.perf_counter()
    SnapshotStore(store, snaps.city).open(man.id).tables()
    r = time.perf_counter() - t
    out["s3"] = {"endpoint": store.settings.endpoint, "write_mb_s": round(mb / w, 1), "read_mb_s": round(mb / r, 1),
                 "write_s": round(w, 3), "read_s": round(r, 3), "snapshot": man.id}
    snaps._remove_all_versions(snaps._list(f"{snaps.base}/"))  # leave no benchmark data behind
    return out


def bench_twin(store: Store | None = None, shared_data: Path | None = None, points: int = 1_000_000,
               pings: int = 2_000_000, alerts: int = 100_000, naive_sample: int = 50) -> dict[str, Any]:
    """Run the twin benchmarks and return the results (printed as JSON by ``ssz bench twin``).

    ``store`` is the S3 store to measure (the caller passes the running one); without it only local disk
    is measured for snapshots.
    """
    G, source = _graph(shared_data)
    return {"graph": source, "snap": bench_snap(G, points, naive_sample),
            "snapshot": bench_snapshots(store, G, pings, alerts)}
