"""The twin benchmark runs end to end on small inputs and reports sane, measured values (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

from twin.bench import bench_twin
from twin.objectstore import Store


def test_bench_twin_small(s3_store: Store, shared_data: Path) -> None:
    out = bench_twin(s3_store, shared_data, points=30_000, pings=30_000, alerts=2_000, naive_sample=3)
    json.dumps(out)  # JSON-able
    assert out["graph"].startswith("Chiang Mai OSM")
    snap = out["snap"]
    assert snap["points"] == 30_000 and snap["edges"] == 4552 and snap["points_per_s"] > 0
    # Fixes are street points with 8 m Gaussian noise: the median distance to the street is a few metres.
    assert 2.0 < snap["median_distance_m"] < 8.0
    # the peer (osmnx's vectorised nearest_edges) on the same points, side by side, mostly the same edges
    assert snap["peer_points_per_s"] > 0 and snap["ratio_ours_to_peer"] > 0 and snap["same_edge_share"] > 0.9
    s = out["snapshot"]
    assert s["rows"] == {"alerts": 2_000, "patrol_pings": 30_000} and s["parquet_mb"] > 0.1
    for where in ("local_disk", "s3"):
        assert s[where]["write_mb_s"] > 0 and s[where]["read_mb_s"] > 0
    # The benchmark leaves nothing behind in the bucket.
    assert not list(s3_store.client.list_objects("twin", prefix="snapshots/bench-", recursive=True))
