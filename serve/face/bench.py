"""Face service throughput and latency on this machine: ``bench_faces() -> dict`` (the lead wires ``ssz bench``).

Measures :meth:`FaceService.identify` (MTCNN detection + alignment + embedding + watchlist search, the full
per-frame work) on camera-sized frames that each hold one face, for batch sizes 1, 4, 8 and 16: faces/s,
p50/p99 latency of one batched call, and the batched/unbatched throughput ratio (best batched faces/s over
batch-size-1 faces/s). It measures and prints; it asserts nothing. On CPU, MTCNN and dlib already use all cores
for one image, so batching gains little here; on a GPU (``device="cuda"``) the batched MTCNN pass is where
batching pays.

:func:`bench_faces_serve` measures the same through a running Ray Serve deployment: single-image requests from
the client, grouped by ``@serve.batch`` in the replica (closed loop with ``b`` requests in flight per round).
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any

import numpy as np


def _frame(width: int, height: int, seed: int) -> np.ndarray:
    """A camera-sized frame: noise background with the scikit-image astronaut's head pasted at a random spot."""
    from skimage import data

    rng = np.random.default_rng(seed)
    frame = rng.integers(40, 90, size=(height, width, 3), dtype=np.uint8)
    head = data.astronaut()[20:240, 120:330]
    y = int(rng.integers(0, height - head.shape[0]))
    x = int(rng.integers(0, width - head.shape[1]))
    frame[y:y + head.shape[0], x:x + head.shape[1]] = head
    return frame


def bench_faces(batch_sizes: tuple[int, ...] = (1, 4, 8, 16), faces_per_size: int = 32, width: int = 640,
                height: int = 360, engine: str = "dlib", device: str = "cpu", threads: int | None = None,
                service: Any | None = None) -> dict:
    """Faces/s and per-call latency of batched identify for each batch size; returns a JSON-able dict.

    ``service``: an already loaded FaceService to measure (then ``engine`` and ``device`` are taken from it).
    """
    import torch

    from serve.face.service import FaceService, FaceServiceConfig

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    svc = service or FaceService(FaceServiceConfig(engine=engine, device=device))
    engine, device = svc.embedder.name, str(svc.detector.device)
    load_s = time.perf_counter() - t0
    frames = [_frame(width, height, s) for s in range(max(batch_sizes))]
    svc.identify(frames[:1])  # warm-up: first-call allocations
    results: dict[str, Any] = {}
    for b in batch_sizes:
        calls = max(2, -(-faces_per_size // b))
        lat, faces = [], 0
        start = time.perf_counter()
        for _ in range(calls):
            t = time.perf_counter()
            out = svc.identify(frames[:b])
            lat.append(time.perf_counter() - t)
            faces += sum(len(r.faces) for r in out)
        wall = time.perf_counter() - start
        results[str(b)] = {
            "calls": calls, "faces": faces, "faces_per_s": round(faces / wall, 2),
            "latency_p50_s": round(float(np.percentile(lat, 50)), 4),
            "latency_p99_s": round(float(np.percentile(lat, 99)), 4),
            "per_face_ms": round(1000 * wall / max(1, faces), 1),
        }
    unbatched = results[str(batch_sizes[0])]["faces_per_s"] if batch_sizes[0] == 1 else None
    best = max(results, key=lambda k: results[k]["faces_per_s"])
    report = {
        "what": "FaceService.identify: MTCNN + align + embed + watchlist search, one face per frame",
        "engine": engine, "device": device, "frame": f"{width}x{height}", "model_load_s": round(load_s, 2),
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "machine": platform.processor() or
        platform.machine(), "batch_sizes": results,
        "best_batch_size": int(best),
        "batched_unbatched_ratio": round(results[best]["faces_per_s"] / unbatched, 3) if unbatched else None,
    }
    print(json.dumps(report, indent=1))
    return report


def bench_faces_serve(batch_sizes: tuple[int, ...] = (1, 4, 8, 16), faces_per_size: int = 32, width: int = 640,
                      height: int = 360, num_cpus: float = 1.0, num_gpus: float = 0.0,
                      app_name: str = "face-bench", handle: Any | None = None) -> dict:
    """Faces/s and request latency through Serve's dynamic batching; Ray must already be connected.

    Deploys one face app (``max_batch_size`` = the largest batch size), then for each ``b`` sends rounds of ``b``
    concurrent single-frame ``identify`` requests; the app is deleted at the end. With ``handle`` (a running
    face deployment) it measures that one instead and deploys nothing.
    """
    import ray
    from ray import serve

    from serve.face.deployment import FaceAppConfig, build_face_app

    if not ray.is_initialized():
        raise RuntimeError("bench_faces_serve needs a Ray connection: call cluster.raycluster.connect() first")
    top = max(batch_sizes)
    cfg = FaceAppConfig(max_batch_size=top, batch_wait_timeout_s=0.01, num_cpus=num_cpus, num_gpus=num_gpus,
                        service={"device": "cuda" if num_gpus else "cpu"})
    t0 = time.perf_counter()
    own = handle is None
    if own:
        handle = serve.run(build_face_app(cfg), name=app_name, route_prefix=None)
    frames = [ray.put(_frame(width, height, s)) for s in range(top)]
    handle.identify.remote(frames[0]).result(timeout_s=300)
    load_s = time.perf_counter() - t0
    results: dict[str, Any] = {}
    try:
        for b in batch_sizes:
            rounds = max(2, -(-faces_per_size // b))
            lat: list[float] = []
            faces = 0
            start = time.perf_counter()
            for _ in range(rounds):
                t = time.perf_counter()
                resps = [handle.identify.remote(frames[i]) for i in range(b)]
                for r in resps:
                    faces += len(r.result(timeout_s=300).faces)
                    lat.append(time.perf_counter() - t)
            wall = time.perf_counter() - start
            results[str(b)] = {"requests": rounds * b, "faces": faces, "faces_per_s": round(faces / wall, 2),
                               "latency_p50_s": round(float(np.percentile(lat, 50)), 4),
                               "latency_p99_s": round(float(np.percentile(lat, 99)), 4)}
        batches = handle.health.remote().result()["recent_batch_sizes"]
    finally:
        if own:
            serve.delete(app_name)
    unbatched = results[str(batch_sizes[0])]["faces_per_s"] if batch_sizes[0] == 1 else None
    best = max(results, key=lambda k: results[k]["faces_per_s"])
    report = {"what": "Serve FaceDeployment.identify, single-frame requests batched by @serve.batch",
              "frame": f"{width}x{height}", "deploy_and_warmup_s": round(load_s, 2), "batch_sizes": results,
              "observed_batch_sizes_tail": batches[-20:], "best_batch_size": int(best),
              "batched_unbatched_ratio": round(results[best]["faces_per_s"] / unbatched, 3) if unbatched else None}
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    bench_faces()
