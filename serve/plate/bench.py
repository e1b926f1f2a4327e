"""Plate service throughput and latency per batch size (the lead wires it as ``ssz bench plates``).

:func:`bench_plates` reads rendered 640×480 street scenes (one plate each, mild level) through
:class:`~serve.plate.service.PlateService` in batches of 1, 4, 8 and 16 frames and reports plates/s, the
p50/p99 latency of a batch call, and the batched/unbatched throughput ratio. It also times plate *crops*
(what a camera shard sends when it cut the plate out itself), where OCR dominates and batching gains most.
With ``via_serve=True`` it repeats the frame measurement through a running Ray Serve deployment with
concurrent single-frame calls, so ``@serve.batch`` forms the batches.

It measures and prints; it asserts nothing about speed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from serve.plate.render import render_plate, render_scene
from serve.plate.service import PlateService

BATCH_SIZES = (1, 4, 8, 16)


def _time_batches(fn: Any, items: list[np.ndarray], batch: int) -> tuple[float, list[float]]:
    """Total seconds and per-call latencies of ``fn`` over ``items`` in chunks of ``batch``."""
    lat: list[float] = []
    t0 = time.perf_counter()
    for i in range(0, len(items), batch):
        t = time.perf_counter()
        fn(items[i: i + batch])
        lat.append(time.perf_counter() - t)
    return time.perf_counter() - t0, lat


def _stats(n: int, total: float, lat: list[float]) -> dict[str, float]:
    return {"plates_per_s": round(n / total, 2), "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 1),
            "p99_ms": round(float(np.percentile(lat, 99)) * 1000, 1), "calls": len(lat)}


def bench_plates(n_frames: int = 32, batch_sizes: tuple[int, ...] = BATCH_SIZES, level: str = "mild",
                 via_serve: bool = False, service: PlateService | None = None) -> dict[str, Any]:
    """Measure plates/s and latency for each batch size (frames and crops); returns a JSON-able dict."""
    svc = service or PlateService()
    frames = [render_scene(70_000 + i, level).image for i in range(n_frames)]
    crops = [render_plate(70_000 + i, level).image for i in range(n_frames)]
    svc.read(frames[:2])  # warm caches, spawn the OCR thread pool
    out: dict[str, Any] = {"engine": svc.engine.name, "localiser": svc.localiser.name, "level": level,
                           "n_frames": n_frames, "frame_size": [640, 480], "cpus": os.cpu_count(),
                           "frames": {}, "crops": {}}
    for kind, items, fn in (("frames", frames, svc.read), ("crops", crops, svc.read_crops)):
        for b in batch_sizes:
            total, lat = _time_batches(fn, items, b)
            out[kind][str(b)] = _stats(len(items), total, lat)
        lo, hi = str(min(batch_sizes)), str(max(batch_sizes))
        out[kind]["batched_unbatched_ratio"] = round(out[kind][hi]["plates_per_s"] / out[kind][lo]["plates_per_s"], 2)
    if via_serve:
        out["serve"] = _bench_serve(frames, batch_sizes)
    out["plates_per_s"] = {b: out["frames"][str(b)]["plates_per_s"] for b in map(str, batch_sizes)}
    out["batched_unbatched_ratio"] = out["frames"]["batched_unbatched_ratio"]
    return out


def _bench_serve(frames: list[np.ndarray], batch_sizes: tuple[int, ...]) -> dict[str, Any]:
    """Concurrent single-frame calls through a Serve deployment per max_batch_size (needs a Ray cluster)."""
    from ray import serve

    from serve.plate.deployment import PlateAppConfig, build_plate_app

    res: dict[str, Any] = {}
    rgb = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames]
    for b in batch_sizes:
        name = f"plate-bench-{b}"
        handle = serve.run(build_plate_app(PlateAppConfig(max_batch_size=b, batch_wait_timeout_s=0.02,
                                                          num_cpus=0.5)), name=name, route_prefix=None)
        handle.read.remote(rgb[0]).result(timeout_s=120)
        t0 = time.perf_counter()
        starts = {}
        pending = []
        for i, im in enumerate(rgb):
            starts[i] = time.perf_counter()
            pending.append((i, handle.read.remote(im)))
        lat = []
        for i, r in pending:
            r.result(timeout_s=300)
            lat.append(time.perf_counter() - starts[i])
        total = time.perf_counter() - t0
        health = handle.health.remote().result()
        res[str(b)] = {**_stats(len(rgb), total, lat), "mean_batch": round(float(np.mean(
            health["recent_batch_sizes"][1:] or [1])), 2)}
        serve.delete(name)
    lo, hi = str(min(batch_sizes)), str(max(batch_sizes))
    res["batched_unbatched_ratio"] = round(res[hi]["plates_per_s"] / res[lo]["plates_per_s"], 2)
    return res


if __name__ == "__main__":
    print(json.dumps(bench_plates(), indent=1))
