"""Plate reading throughput per engine: plates/s at each batch size, for the recogniser alone and the service.

For each engine (default: the learned ``model`` and ``tesseract``) :func:`bench_plates` measures

- ``recogniser``: the OCR engine alone on already rectified plates (what the issue's 200 plates/s target is
  about): one ``engine.read`` call per batch;
- ``crops``: :meth:`~serve.plate.service.PlateService.read_crops` on plate crops (candidate quads, rectification,
  reading, verification);
- ``frames``: :meth:`~serve.plate.service.PlateService.read` on 640 × 480 street scenes (localisation included);

with plates/s, p50/p99 latency per call and the batched/unbatched ratio; ``via_serve`` adds concurrent
single-frame calls through a Ray Serve deployment (``@serve.batch`` forms the batches). Inputs are rendered with
the held-out fonts. It measures and prints; it asserts nothing about speed (the machine may be shared: compare
runs on the same machine).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from serve.plate.localise import rectify
from serve.plate.render import render_plate, render_scene
from serve.plate.service import PlateService, PlateServiceConfig

BATCH_SIZES = (1, 16)
ENGINES = ("model", "tesseract")


def _time_batches(fn: Any, items: list[Any], batch: int) -> tuple[float, list[float], float]:
    """Total wall seconds, per-call latencies and the CPU seconds of ``fn`` over ``items`` in chunks of ``batch``
    (this process's threads and the child processes it waited for: Tesseract runs as one)."""
    lat: list[float] = []
    t0, c0 = time.perf_counter(), _cpu_s()
    for i in range(0, len(items), batch):
        t = time.perf_counter()
        fn(items[i: i + batch])
        lat.append(time.perf_counter() - t)
    return time.perf_counter() - t0, lat, _cpu_s() - c0


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _stats(n: int, total: float, lat: list[float], cpu: float | None = None) -> dict[str, float]:
    """plates/s (wall), p50/p99 latency per call and, with ``cpu``, plates per CPU-second (what the work costs,
    whatever else shares the cores: on a 2-core machine, 2 x that is the ceiling with both cores busy)."""
    out = {"plates_per_s": round(n / total, 2), "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 1),
           "p99_ms": round(float(np.percentile(lat, 99)) * 1000, 1), "calls": len(lat)}
    if cpu:
        out["plates_per_cpu_s"] = round(n / cpu, 2)
    return out


def bench_engine(svc: PlateService, n: int = 32, batch_sizes: tuple[int, ...] = BATCH_SIZES, level: str = "mild",
                 kinds: tuple[str, ...] = ("recogniser", "crops", "frames")) -> dict[str, Any]:
    """Throughput of one service's engine (``recogniser``), crops path and frames path, per batch size."""
    rendered = [render_plate(70_000 + i, level) for i in range(n)]
    inputs = {"recogniser": [rectify(r.image, r.quad) for r in rendered], "crops": [r.image for r in rendered],
              "frames": [render_scene(70_000 + i, level).image for i in range(n)] if "frames" in kinds else []}
    fns = {"recogniser": svc.engine.read, "crops": svc.read_crops, "frames": svc.read}
    svc.read(inputs["crops"][:2])  # warm caches and thread pools
    out: dict[str, Any] = {"engine": svc.engine.name, "localiser": svc.localiser.name, "level": level, "n": n}
    for kind in kinds:
        res: dict[str, Any] = {}
        for b in batch_sizes:
            total, lat, cpu = _time_batches(fns[kind], inputs[kind], b)
            res[str(b)] = _stats(n, total, lat, cpu)
        lo, hi = str(min(batch_sizes)), str(max(batch_sizes))
        res["batched_unbatched_ratio"] = round(res[hi]["plates_per_s"] / res[lo]["plates_per_s"], 2)
        out[kind] = res
    return out


def bench_plates(n_frames: int = 32, batch_sizes: tuple[int, ...] = BATCH_SIZES, level: str = "mild",
                 via_serve: bool = False, engines: tuple[str, ...] = ENGINES,
                 services: dict[str, PlateService] | None = None) -> dict[str, Any]:
    """Plates/s per engine and batch size (recogniser, crops, frames); one JSON-able dict."""
    out: dict[str, Any] = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "load_1min": round(os.getloadavg()[0], 2), "batch_sizes": list(batch_sizes),
                           "engines": {}}
    for name in engines:
        svc = (services or {}).get(name) or PlateService(PlateServiceConfig(engine=name))
        out["engines"][name] = bench_engine(svc, n_frames, batch_sizes, level)
    out["recogniser_plates_per_s"] = {name: {b: r["recogniser"][b]["plates_per_s"] for b in map(str, batch_sizes)}
                                      for name, r in out["engines"].items()}
    if via_serve:
        out["serve"] = _bench_serve([render_scene(70_000 + i, level).image for i in range(n_frames)], batch_sizes)
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
