"""``ssz bench stages``: measure what each pipeline stage costs per frame, face or plate on this machine.

The result is a :class:`cluster.capacity.StageCosts`, written as JSON for ``ssz plan capacity``; every figure is
CPU time of this process (all threads), so a machine shared with other work still gives its true cost:

* decode: PyAV on opencv-doc's ``vtest.avi`` (768x576 MPEG-4), ms per frame;
* draw: a synthetic camera drawing one 320x240 frame (the simulated cameras' "decode");
* gate: the motion gate on decoded frames and on synthetic ones; prepare: downsizing a sampled frame to 640;
* with ``models``: MTCNN per 640x360 frame, align + dlib embed + watchlist search per face, plate localise +
  OCR per frame (batches of ``batch``);
* calibration (:func:`calibration_runs`, :func:`calibrate`): two or more short ``ssz run --detect truth`` runs
  at different camera counts and frame rates (default 32 cameras at 10 fps, 96 at 1 fps, 128 at 0.5 fps,
  45 s each), fitted by non-negative least squares into the reader cost per frame, the shard actor's cost per processed
  frame and per camera-second, and the alert sink's and Ray control plane's fixed cores and cost per
  camera-second (plus memory per camera). ``--from-run`` fits recorded runs' JSON instead.
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

from cluster.capacity import StageCosts, measured_run

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
                   runs: list[dict[str, Any]] | None = None, device: str = "cpu") -> StageCosts:
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
    runs
        Calibration runs: JSON of ``ssz run --detect truth --json`` (:class:`cluster.pipeline.RunSummary`), two
        or more camera counts and frame rates (:func:`calibrate`).
    device
        ``cpu`` or ``cuda`` for the model stages (``cuda`` fails clearly without a GPU).

    Raises
    ------
    FileNotFoundError
        When the clip is missing (install Debian's opencv-doc).
    ValueError
        When the calibration runs cannot be fitted (:func:`calibrate`), before anything is measured.
    serve.devices.DeviceError
        ``cuda`` without a usable GPU (a ValueError: the CLI reports it).
    """
    import cv2

    from actors.motion import MotionGate
    from serve.devices import check_device

    check_device(device)
    fit = calibrate(runs) if runs else {}  # bad runs fail before the measurements, not after them
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
    if models:
        costs.update(_model_costs(batch, device))
    costs.update(fit)
    return StageCosts.model_validate(costs)


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


def calibrate(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Fit the Ray-side terms of :class:`StageCosts` on calibration runs (JSON of ``ssz run --detect truth``).

    Per run ``i`` with ``n`` cameras, ``F`` frames decoded and ``P`` processed per second (CPU in ms per s):
    readers = r F; shards - readers = a n + c P; sink = k0 + k1 n; control plane = c0 + c1 n; ``r`` is the
    runs' total reader CPU over their total frames, the others non-negative least squares (scipy ``nnls``).

    Raises
    ------
    ValueError
        Fewer than two runs, runs without metrics or sink sample, or runs that cannot separate the terms (the
        same camera count, or the same processed frames per camera).
    """
    from scipy.optimize import nnls

    runs = [measured_run(s) for s in summaries]
    if len(runs) < 2 or len({r.cameras for r in runs}) < 2:
        raise ValueError("calibration needs two or more runs with different camera counts (and frame rates), e.g. "
                         "32 cameras at 10 fps and 96 at 1 fps")
    n = np.array([r.cameras for r in runs], float)
    f = np.array([r.cameras * r.fps for r in runs], float)
    p = f * np.array([r.processed_ratio for r in runs])
    per_cam = p / n
    if np.ptp(per_cam) < 0.05 * per_cam.max():
        raise ValueError("the calibration runs process the same frames per camera: vary the frame rate too, so the "
                         "per-frame and per-camera costs can be told apart")
    ms = {k: 1000 * np.array([getattr(r, k) for r in runs]) for k in
          ("shard_cores", "reader_cores", "sink_cores", "control_plane_cores")}
    (a, c), _ = nnls(np.column_stack([n, p]), ms["shard_cores"] - ms["reader_cores"])
    ones = np.ones_like(n)
    (k0, k1), _ = nnls(np.column_stack([ones, n]), ms["sink_cores"])
    (c0, c1), _ = nnls(np.column_stack([ones, n]), ms["control_plane_cores"])
    biggest = max(summaries, key=lambda s: int(s["metrics"]["cameras"]))
    return {"reader_ms_per_frame": round(float(ms["reader_cores"].sum() / f.sum()), 4),
            "shard_ms_per_processed_frame": round(float(c), 4), "shard_ms_per_camera_s": round(float(a), 4),
            "sink_cores": round(float(k0) / 1000, 4), "sink_ms_per_camera_s": round(float(k1), 4),
            "control_plane_cores": round(float(c0) / 1000, 4), "control_plane_ms_per_camera_s": round(float(c1), 4),
            "mem_mb_per_camera": biggest["metrics"].get("memory_mb_per_camera"),
            "calibration": [r.model_dump() for r in runs]}


def parse_points(text: str) -> list[tuple[int, float]]:
    """``"32x10,96x1"`` -> ``[(32, 10.0), (96, 1.0)]`` (cameras x frame rate).

    Raises
    ------
    ValueError
        When an item is not ``CAMERASxFPS`` with a whole camera count >= 1 and a rate in (0, 30].
    """
    out = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        cams, _, fps = item.lower().partition("x")
        try:
            pt = (int(cams), float(fps))
        except ValueError:
            pt = (0, 0.0)
        if pt[0] < 1 or not 0 < pt[1] <= 30:
            raise ValueError(f"calibration point {item!r} is not CAMERASxFPS (e.g. 32x10: 32 cameras at 10 fps)")
        out.append(pt)
    return out


def calibration_runs(points: list[tuple[int, float]], seconds: float = 45.0,
                     city: str = "hatyai") -> list[dict[str, Any]]:
    """Run ``ssz run --detect truth`` once per (cameras, fps) point for ``seconds`` each (face cameras only).

    Needs the object store up and a Ray connection (as ``ssz run``). Returns the runs' JSON (``RunSummary``).
    """
    from cluster.pipeline import RunConfig, run

    return [run(RunConfig(city=city, cameras=cams, plate_cameras=0, detect="truth", fps=fps, duration_s=seconds))
            .model_dump(mode="json") for cams, fps in points]


def write_costs(costs: StageCosts, path: Path) -> Path:
    """Write the costs as JSON (the file ``ssz plan capacity`` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(costs.model_dump(), indent=2) + "\n")
    return path
