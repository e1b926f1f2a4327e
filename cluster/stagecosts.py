"""``ssz bench stages``: measure what each pipeline stage costs per frame, face or plate on this machine.

The result is a :class:`cluster.capacity.StageCosts`, written as JSON for ``ssz plan capacity``; every figure is
CPU time of this process (all threads), so a machine shared with other work still gives its true cost:

* decode: PyAV on opencv-doc's ``vtest.avi`` (768x576 MPEG-4), ms per frame;
* draw: a synthetic camera drawing one 320x240 frame (the simulated cameras' "decode"); one shard of 32 such
  cameras in this process (real-time pacing, truth detector): CPU per frame of the process and of the readers;
* gate: the motion gate on decoded frames and on synthetic ones; prepare: downsizing a sampled frame to 640;
* with ``models``: MTCNN per 640x360 frame, align + dlib embed + watchlist search per face, plate localise +
  OCR per frame (batches of ``batch``);
* from a city-scale run's JSON (``ssz run --detect truth --json``): the shard overhead per frame beyond the
  stages, memory per camera and the control plane's cores.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cluster.capacity import StageCosts

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _cpu() -> float:
    """CPU seconds of this process (all threads) and its finished children (Tesseract runs as a subprocess)."""
    import resource

    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def _ms_per(fn: Callable[[Any], Any], items: list[Any], repeat: int = 3) -> float:
    """Best-of-``repeat`` CPU milliseconds per item of ``fn`` over ``items``.

    CPU time of this process (all its threads) and its children, not wall time: on a shared machine the wall
    clock counts the other programs too, and CPU time is what the capacity model needs (cores = items/s x CPU s
    per item).
    """
    best = float("inf")
    for _ in range(repeat):
        t = _cpu()
        for it in items:
            fn(it)
        best = min(best, (_cpu() - t) / max(1, len(items)))
    return round(best * 1000, 4)


def measure_stages(*, models: bool = False, batch: int = 8, video: Path = VTEST, frames: int = 200,
                   from_run: dict[str, Any] | None = None, device: str = "cpu") -> StageCosts:
    """Measure the stage costs (see the module docstring).

    Parameters
    ----------
    models
        Also measure the face and plate models (loads MTCNN, dlib and the plate reader: a minute on 2 cores).
    batch
        Batch size of the model measurements.
    video
        The clip to decode.
    frames
        Frames decoded (and gated) per measurement.
    from_run
        The JSON of ``ssz run --detect truth --json`` (a :class:`cluster.pipeline.RunSummary`): adds the shard
        overhead per frame, memory per camera and control plane cores.
    device
        ``cpu`` or ``cuda`` for the model stages (``cuda`` fails clearly without a GPU).

    Raises
    ------
    FileNotFoundError
        When the clip is missing (install Debian's opencv-doc).
    serve.devices.DeviceError
        ``cuda`` without a usable GPU (a ValueError: the CLI reports it).
    """
    import cv2

    from actors.motion import MotionGate
    from serve.devices import check_device

    check_device(device)
    from actors.sources import CameraSpec, PyAVSource
    from actors.sources.synthetic import SimulatedSource

    if not video.is_file():
        raise FileNotFoundError(f"{video} not found: install Debian's opencv-doc or pass another clip")
    t = _cpu()
    with PyAVSource(CameraSpec(id="bench", url=str(video), max_frames=frames)) as src:
        decoded = [f.image for f in src.frames()]
    decode_ms = (_cpu() - t) / len(decoded) * 1000
    sim = SimulatedSource(CameraSpec(id="sim", url="sim://bench", fps=10, sim_size=(320, 240)))
    sim.open()
    drawn = [sim.draw(n) for n in range(frames)]
    draw_ms = _ms_per(sim.draw, list(range(frames)))

    def gate_ms(imgs: list[np.ndarray]) -> float:
        g = MotionGate()
        return _ms_per(lambda im: g.check(im, None), imgs)

    prep = _ms_per(lambda im: np.ascontiguousarray(cv2.resize(im, (640, 480), interpolation=cv2.INTER_AREA)),
                   decoded)
    h, w = decoded[0].shape[:2]
    costs: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}", "cpus": os.cpu_count() or 1,
        "device": device, "load_avg_1m": round(os.getloadavg()[0], 2), "decode_ms_per_frame": round(decode_ms, 4),
        "decode_pixels": h * w, "draw_ms_per_frame": draw_ms, "draw_pixels": 320 * 240,
        "gate_ms_per_frame": gate_ms(decoded), "gate_synthetic_ms_per_frame": gate_ms(drawn),
        "prepare_ms_per_frame": prep, "batch": batch}
    costs.update(_shard_in_process())
    if models:
        costs.update(_model_costs(batch, device))
    if from_run is not None:
        costs.update(costs_from_run(from_run, costs))
    return StageCosts.model_validate(costs)


def _shard_in_process(cameras: int = 32, fps: float = 10.0, seconds: float = 12.0) -> dict[str, float]:
    """One shard in this process: ``cameras`` synthetic cameras paced in real time, the truth detector, no Ray.

    Returns the CPU per decoded frame of the whole process and of the cameras' reader threads (decode + gate +
    sample + prepare + their thread wake-ups), the costs of a simulated city-scale run per frame.
    """
    from actors.detectors import TruthDetector
    from actors.shard import ShardConfig, ShardCore
    from actors.sources import CameraSpec

    epoch = float(int(time.time()))
    specs = [CameraSpec(id=f"s{i}", url=f"sim://s{i}", fps=fps, seed=i, realtime=True, sim_epoch=epoch)
             for i in range(cameras)]
    cfg = ShardConfig(shard_id="stages", cameras=specs, block_when_full=True)
    core = ShardCore(cfg, TruthDetector({s.id: s for s in specs}))
    t = _cpu()
    core.start()
    time.sleep(seconds)
    core.stop()
    cpu = _cpu() - t
    st = core.stats()
    frames = max(1, sum(c.decoded for c in st.cameras))
    return {"synthetic_shard_ms_per_frame": round(cpu / frames * 1000, 4),
            "synthetic_reader_ms_per_frame": round(sum(c.reader_cpu_s for c in st.cameras) / frames * 1000, 4)}


def _model_costs(batch: int, device: str) -> dict[str, float]:
    from serve.face.bench import _frame
    from serve.face.service import FaceService, FaceServiceConfig
    from serve.plate.render import render_scene
    from serve.plate.service import PlateService

    svc = FaceService(FaceServiceConfig(device=device))
    frames = [_frame(640, 360, s) for s in range(batch)]
    svc.identify(frames[:1])  # warm-up
    t = _cpu()  # CPU seconds of all threads (torch uses several): robust to a shared machine
    dets = svc.detector.detect(frames)
    detect = (_cpu() - t) / batch
    t = _cpu()
    svc._embed_all(frames, dets)  # align + embed every detected face (the watchlist search is negligible)
    embed = _cpu() - t
    faces = max(1, sum(len(d) for d in dets))
    plates = PlateService()
    scenes = [render_scene(71_000 + i, "mild").image for i in range(batch)]
    plates.read(scenes[:1])
    t = _cpu()
    plates.read(scenes)
    plate = (_cpu() - t) / batch
    return {"face_detect_ms_per_frame": round(detect * 1000, 2),
            "face_embed_ms_per_face": round(embed / faces * 1000, 2),
            "plate_ms_per_frame": round(plate * 1000, 2)}


def costs_from_run(summary: dict[str, Any], costs: dict[str, Any]) -> dict[str, float]:
    """Shard overhead per frame, memory per camera and control-plane cores from a run's JSON.

    The overhead is the shard processes' CPU per frame minus what the reader stages cost per frame in that run
    (so it holds threads, queues, batching, tracking, stats, Ray's worker threads).

    Raises
    ------
    ValueError
        When the JSON has no ``metrics`` (the run did not reach its measuring phase).
    """
    m = summary.get("metrics")
    if not m:
        raise ValueError("the run's JSON has no metrics: run `ssz run --detect truth --json` long enough for every "
                         "camera to start")
    fps_per_cam = m["frames_decoded_per_s"] / max(1, m["cameras"])
    if fps_per_cam <= 0:
        raise ValueError("the run decoded no frames while it was measured")
    shard_ms = m["cpu_pct_per_camera_shard"] / 100 / fps_per_cam * 1000
    reader_ms = m["cpu_pct_per_camera_reader"] / 100 / fps_per_cam * 1000
    return {"shard_overhead_ms_per_frame": round(max(0.0, shard_ms - reader_ms), 4),
            "mem_mb_per_camera": m["memory_mb_per_camera"],
            "control_plane_cores": round(m["control_plane_cpu_pct"] / 100, 3)}


def write_costs(costs: StageCosts, path: Path) -> Path:
    """Write the costs as JSON (the file ``ssz plan capacity`` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(costs.model_dump(), indent=2) + "\n")
    return path
