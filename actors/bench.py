"""``ssz bench pipeline``: measure the stream-processing core on real footage and print JSON.

What it measures (all on this machine, nothing asserted):

* ``decode``: frames decoded per second by PyAV on opencv-doc's vtest.avi (768x576 MPEG-4), full size and
  downscaled at decode time.
* ``gate``: the motion gate's skip ratio on vtest.avi as it is (a busy pedestrian scene: people are always in
  view) and on a "quiet hours" clip (vtest's own empty street, i.e. the per-pixel median of the clip, with
  sensor noise, around a busy stretch), which is what most CCTV looks like most of the time.
* ``faces``: face events that MTCNN (facenet-pytorch, weights shipped in the wheel, probability >= 0.95)
  finds on the frames the pipeline samples *without* the gate versus *with* it. An event is a run of sampled
  frames with a face (gaps of up to ``event_gap`` sampled frames allowed). The clip is vtest.avi followed by
  people from the shared labelled face set walking across the empty street. ``missed_with_gate`` must be 0.
* ``ray_overhead``: the same shard pipeline (decode, gate, sample, downsize, batch, a no-op detector) run as
  a plain in-process :class:`~actors.shard.ShardCore` versus inside a :class:`~actors.shard.CameraShard` Ray
  actor, in frames per second; plus the latency from frame decode to alert decision in the actor.
* ``alert_latency`` (:func:`bench_live_latency`): live mode at a set load (70% of what MTCNN + dlib sustain
  here): watchlisted people cross real clips streamed in real time by several cameras through a CameraShard
  actor with MTCNN + dlib into the AlertSink on the object store; p50/p99 from frame decoded to alert written,
  model time and the rest apart, and the rest per stage.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actors.motion import MotionGate, MotionGateConfig
from actors.sampler import RateSampler, SamplerConfig
from actors.sources import CameraSpec, PyAVSource

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _decode(path: Path, width: int | None = None, max_frames: int | None = None) -> tuple[list[np.ndarray], float]:
    t0 = time.perf_counter()
    with PyAVSource(CameraSpec(id="bench", url=str(path), width=width, max_frames=max_frames)) as src:
        frames = [f.image for f in src.frames()]
    return frames, time.perf_counter() - t0


def bench_decode(path: Path = VTEST) -> dict[str, Any]:
    """Frames decoded per second (PyAV, RGB out) at full size and at 320 px wide."""
    out: dict[str, Any] = {"video": str(path)}
    for label, width in (("full", None), ("w320", 320)):
        frames, dt = _decode(path, width)
        out[f"fps_{label}"] = round(len(frames) / dt, 1)
        out["frames"] = len(frames)
        out[f"size_{label}"] = list(frames[0].shape)
    return out


def empty_scene(frames: Sequence[np.ndarray]) -> np.ndarray:
    """The scene without passers-by: the per-pixel median of every 8th frame."""
    return np.ascontiguousarray(np.median(np.stack(frames[::8]), axis=0).astype(np.uint8))


def _noisy(img: np.ndarray, rng: np.random.Generator, sigma: float = 2.5) -> np.ndarray:
    return np.clip(img.astype(np.int16) + rng.normal(0, sigma, img.shape).astype(np.int16), 0, 255).astype(np.uint8)


def gate_decisions(frames: Sequence[np.ndarray], fps: float, gate: MotionGateConfig,
                   sampler: SamplerConfig | None) -> list[int]:
    """Indices of the frames that pass the gate (if enabled) and then the sampler (if given)."""
    g = MotionGate(gate)
    s = RateSampler(sampler) if sampler else None
    out = []
    for i, f in enumerate(frames):
        t = i / fps
        if g.check(f, t).passed and (s is None or s.take(t)):
            out.append(i)
    return out


def bench_gate(frames: Sequence[np.ndarray], gate: MotionGateConfig, fps: float = 10.0) -> dict[str, Any]:
    """Skip ratio on the busy clip and on a quiet-hours clip built from its empty street."""
    busy = gate_decisions(frames, fps, gate, None)
    rng = np.random.default_rng(0)
    bg = empty_scene(frames)
    quiet = [_noisy(bg, rng) for _ in range(300)]
    clip = quiet + list(frames[200:300]) + quiet
    passed = gate_decisions(clip, fps, gate, None)
    t0 = time.perf_counter()
    g = MotionGate(gate)
    for f in frames:
        g.check(f)
    per_frame_us = (time.perf_counter() - t0) / len(frames) * 1e6
    return {"skip_ratio_vtest": round(1 - len(busy) / len(frames), 4),
            "skip_ratio_quiet_hours_clip": round(1 - len(passed) / len(clip), 4),
            "quiet_hours_clip": "300 empty-street frames + vtest[200:300] + 300 empty-street frames",
            "gate_us_per_frame": round(per_frame_us, 1), "config": gate.model_dump()}


def face_walkers(bg: np.ndarray, faces_dir: Path, n_people: int = 3, fps: float = 10.0,
                 seed: int = 0) -> list[np.ndarray]:
    """Frames of people (photos from the labelled face set) crossing the empty street, one after another.

    Each person walks across in 6 s with 3 s of empty street in between; the photo is 35% of the frame height
    (the head about 110 px on a 768x576 scene), a usual size for a face-capture camera.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    files = sorted(faces_dir.glob("img*.jpg"), key=lambda p: int(p.stem[3:]))[:: max(1, 60 // max(1, n_people))]
    h, w = bg.shape[:2]
    out: list[np.ndarray] = []
    for k, f in enumerate(files[:n_people]):
        photo = Image.open(f).convert("RGB")
        ph = int(h * 0.35)
        pw = round(photo.width * ph / photo.height)
        person = np.asarray(photo.resize((pw, ph)))
        out += [_noisy(bg, rng) for _ in range(int(3 * fps))]
        n = int(6 * fps)
        y = int(h * 0.3) + (k % 3) * h // 30
        for i in range(n):
            img = _noisy(bg, rng)
            x = int(-pw + (w + pw) * i / (n - 1)) if k % 2 == 0 else int(w - (w + pw) * i / (n - 1))
            x0, x1 = max(0, x), min(w, x + pw)
            if x1 > x0:
                img[y:y + ph, x0:x1] = person[:, x0 - x:x1 - x]
            out.append(img)
    out += [_noisy(bg, rng) for _ in range(int(3 * fps))]
    return out


def _events(face_idx: Sequence[int], sampled: Sequence[int], gap: int) -> list[list[int]]:
    """Group sampled frame indices with faces into events (runs in the sampled order, gaps <= ``gap``)."""
    pos = {f: i for i, f in enumerate(sampled)}
    events: list[list[int]] = []
    for f in sorted(face_idx):
        if events and pos[f] - pos[events[-1][-1]] <= gap + 1:
            events[-1].append(f)
        else:
            events.append([f])
    return events


def bench_faces(frames: Sequence[np.ndarray], gate: MotionGateConfig, sampler: SamplerConfig,
                faces_dir: Path | None, fps: float = 10.0, detect_width: int = 640, event_gap: int = 2,
                device: str | None = None, threshold: float = 0.95, n_people: int = 3) -> dict[str, Any]:
    """Face events MTCNN finds on the sampled frames without the gate versus with it (missed must be 0)."""
    import cv2
    import torch
    from facenet_pytorch import MTCNN

    clip = list(frames)
    walkers = 0
    if faces_dir is not None and faces_dir.is_dir():
        extra = face_walkers(empty_scene(frames), faces_dir, n_people=n_people, fps=fps)
        walkers = len(extra)
        clip += extra
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    mtcnn = MTCNN(keep_all=True, device=dev, thresholds=[0.6, 0.7, 0.7])
    no_gate = gate_decisions(clip, fps, MotionGateConfig(enabled=False), sampler)
    with_gate = gate_decisions(clip, fps, gate, sampler)
    need = sorted(set(no_gate) | set(with_gate))
    faces: dict[int, int] = {}
    t0 = time.perf_counter()
    for i in need:
        img = clip[i]
        if img.shape[1] > detect_width:
            s = detect_width / img.shape[1]
            img = cv2.resize(img, (detect_width, round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        boxes, probs = mtcnn.detect(img)
        if boxes is None:
            faces[i] = 0
            continue
        p = np.asarray(probs, dtype=np.float64)
        faces[i] = int(np.sum(p >= threshold))
    mtcnn_s = time.perf_counter() - t0
    ev_no = _events([i for i in no_gate if faces[i]], no_gate, event_gap)
    ev_with = _events([i for i in with_gate if faces[i]], with_gate, event_gap)
    # the gate changes which frames the sampler picks, so an event counts as found with the gate when a
    # gated face frame falls within its span widened by one sampling period
    tol = int(np.ceil(fps / sampler.rate_fps))
    gated_faces = [i for i in with_gate if faces[i]]
    missed = [e for e in ev_no if not any(e[0] - tol <= i <= e[-1] + tol for i in gated_faces)]
    return {"clip_frames": len(clip), "vtest_frames": len(frames), "face_walker_frames": walkers,
            "sampled_without_gate": len(no_gate), "sampled_with_gate": len(with_gate),
            "face_frames_without_gate": sum(1 for i in no_gate if faces[i]),
            "face_frames_with_gate": sum(1 for i in with_gate if faces[i]),
            "face_events_without_gate": len(ev_no), "face_events_with_gate": len(ev_with),
            "missed_with_gate": len(missed), "missed_events": [[e[0], e[-1]] for e in missed],
            "face_event_spans_without_gate": [[e[0], e[-1]] for e in ev_no],
            "mtcnn_threshold": threshold, "device": dev,
            "mtcnn_ms_per_frame": round(mtcnn_s / max(1, len(need)) * 1000, 1)}


def _noop(images: list[np.ndarray]) -> list[list[Any]]:
    return [[] for _ in images]


def bench_ray_overhead(path: Path = VTEST, cameras: int = 2, max_frames: int = 400, repeats: int = 3,
                       num_cpus: float = 1.0) -> dict[str, Any]:
    """Frames per second through the shard pipeline in this process versus in a Ray actor (medians)."""
    import ray

    from actors.detectors import LocalDetector
    from actors.events import AlertDecisionEvent
    from actors.shard import ShardConfig, ShardCore, start_shard
    from actors.tracker import ConfirmerConfig, Detection

    def cfg(sid: str) -> ShardConfig:
        return ShardConfig(shard_id=sid, block_when_full=True, sampler=SamplerConfig(rate_fps=5),
                           cameras=[CameraSpec(id=f"b{i}", url=str(path), width=320, max_frames=max_frames)
                                    for i in range(cameras)])

    total = cameras * max_frames
    if not ray.is_initialized():
        raise RuntimeError("bench_ray_overhead needs a Ray connection: call cluster.raycluster.connect() first")
    plain_runs: list[float] = []
    ray_runs: list[float] = []
    startups: list[float] = []
    stats_ms = 0.0
    for _ in range(repeats):  # interleaved, medians reported: this machine is shared and noisy
        t0 = time.perf_counter()
        core = ShardCore(cfg("plain"), LocalDetector(_noop)).start()
        while not core.finished():
            time.sleep(0.01)
        plain_runs.append(total / (time.perf_counter() - t0))
        core.stop()

        t_start = time.perf_counter()
        shard = start_shard(cfg("ray"), lambda: LocalDetector(_noop), ray_options={"num_cpus": num_cpus})
        ray.get(shard.pid.remote())  # the constructor has run: cameras are open and decoding
        t0 = time.perf_counter()
        startups.append(t0 - t_start)
        while not ray.get(shard.finished.remote()):
            time.sleep(0.01)
        ray_runs.append(total / (time.perf_counter() - t0))
        t1 = time.perf_counter()
        for _ in range(20):
            ray.get(shard.stats.remote())
        stats_ms = (time.perf_counter() - t1) / 20 * 1000
        ray.kill(shard)
    plain_fps = float(np.median(plain_runs))
    ray_fps = float(np.median(ray_runs))

    jumps = iter(range(10**9))

    def wanted(images: list[np.ndarray]) -> list[list[Detection]]:
        # a watchlisted face that appears somewhere new in every frame: a new track, hence a decision, each time
        out = []
        for _ in images:
            x = float(next(jumps) % 40 * 100)
            out.append([Detection((x, 10, x + 40, 90), 0.99, "face", "wanted-1", 0.9)])
        return out

    lat_cfg = ShardConfig(shard_id="lat", sampler=SamplerConfig(rate_fps=2),
                          cameras=[CameraSpec(id=f"l{i}", url="sim://l", seed=i, realtime=True, fps=10,
                                              sim_size=(320, 240)) for i in range(4)],
                          gate=MotionGateConfig(enabled=False), confirmer=ConfirmerConfig(min_matches=1, cooldown_s=0))
    shard = start_shard(lat_cfg, lambda: LocalDetector(wanted))
    time.sleep(6)
    events = ray.get(shard.drain_events.remote())
    ray.kill(shard)
    lat = [(e.decided_at - e.frame_ts) * 1000 for e in events if isinstance(e, AlertDecisionEvent)]
    return {"peer": "the same stages (ShardCore: decode, gate, sample, batch, no-op detect, track) in one plain "
                    "process", "peer_fps": round(plain_fps, 1), "ours_fps": round(ray_fps, 1),
            "ratio_ours_to_peer": round(ray_fps / plain_fps, 3),
            "cameras": cameras, "frames_per_run": total, "repeats": repeats, "actor_num_cpus": num_cpus,
            "plain_fps": round(plain_fps, 1), "ray_fps": round(ray_fps, 1),
            "plain_fps_runs": [round(x, 1) for x in plain_runs], "ray_fps_runs": [round(x, 1) for x in ray_runs],
            "ray_overhead_pct": round((plain_fps / ray_fps - 1) * 100, 1),
            "ray_stats_call_ms": round(stats_ms, 2), "ray_actor_startup_s": round(float(np.median(startups)), 3),
            "note": "fps from cameras open to all frames processed (no-op detector); actor start-up apart",
            "frame_to_decision_ms_p50": round(float(np.percentile(lat, 50)), 1) if lat else None,
            "frame_to_decision_ms_p99": round(float(np.percentile(lat, 99)), 1) if lat else None,
            "decisions_measured": len(lat)}


def write_clip(frames: Sequence[np.ndarray], path: Path, fps: float = 10.0) -> Path:
    """Encode RGB frames to an MPEG-4 file with PyAV (a real file for the real decode path)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=int(fps))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 2_000_000
        for f in frames:
            for pkt in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return path


class _WatchlistFaces:
    """Detector function run inside the shard actor: MTCNN + dlib identify against a watchlist file."""

    def __init__(self, watchlist_path: str, audit_path: str) -> None:
        self.watchlist_path, self.audit_path = watchlist_path, audit_path
        self._svc: Any = None

    def __call__(self, images: list[np.ndarray]) -> list[list[Any]]:
        from actors.detectors import FaceServeDetector
        from serve.face.service import FaceService, FaceServiceConfig

        if self._svc is None:
            self._svc = FaceService(FaceServiceConfig(watchlist_path=self.watchlist_path, audit_path=self.audit_path))
        return [FaceServeDetector.to_detections(r, 0.95) for r in self._svc.identify(images)]

    def warmed(self) -> _WatchlistFaces:
        """Load the models and run them once (so the first frames do not wait for the load); returns self."""
        self([np.zeros((288, 384, 3), np.uint8)])
        return self


def _enrol_walkers(tmp: Path, faces_dir: Path, n_people: int) -> tuple[str, str]:
    """Enrol the walkers' photos (as :func:`face_walkers` picks them) on a fresh watchlist; its two paths."""
    from serve.face.images import load_rgb
    from serve.face.schemas import WarrantRecord
    from serve.face.service import FaceService, FaceServiceConfig

    wl, audit = str(tmp / "watchlist.json"), str(tmp / "watchlist-audit.jsonl")
    files = sorted(faces_dir.glob("img*.jpg"), key=lambda p: int(p.stem[3:]))[:: max(1, 60 // max(1, n_people))]
    svc = FaceService(FaceServiceConfig(watchlist_path=wl, audit_path=audit))
    for k, f in enumerate(files[:n_people]):
        svc.enrol(WarrantRecord(warrant_no=f"W-BENCH-{k}", court="bench", offence="bench",
                                expires="2099-01-01"), {f.name: load_rgb(str(f))}, actor="bench")
    return wl, audit


def model_capacity(fn: Any, frames: Sequence[np.ndarray], batch_size: int, seconds: float = 20.0) -> dict[str, Any]:
    """Frames per second the detector function sustains on ``frames`` in batches of ``batch_size`` (this process).

    The frames are cycled (all of them at least once, then until ``seconds`` passed); the first batch warms the
    models up and is not counted.
    """
    fn(list(frames[:batch_size]))
    n = 0
    t0 = time.perf_counter()
    i = 0
    while n < len(frames) or time.perf_counter() - t0 < seconds:
        batch = [frames[(i + k) % len(frames)] for k in range(batch_size)]
        fn(batch)
        i += batch_size
        n += batch_size
    dt = time.perf_counter() - t0
    return {"frames": n, "seconds": round(dt, 2), "fps": round(n / dt, 2), "ms_per_frame": round(dt / n * 1000, 1),
            "batch_size": batch_size}


def bench_live_latency(store_settings: Any, faces_dir: Path, video: Path = VTEST, *, load: float = 0.7,
                       duration_s: float = 120.0, n_people: int = 6, sample_fps: float = 2.0, batch_size: int = 2,
                       max_inflight: int = 1, width: int = 384, max_queue_age_s: float | None = None) -> dict[str, Any]:
    """Live-mode alert latency at a set fraction of the machine's capacity: frame decoded -> alert written.

    1. The capacity: frames per second that MTCNN + dlib identify sustains here on the clip's frames (this
       process, batches of ``batch_size``) — what the shard's one detector slot can do.
    2. The offered load: ``load`` x capacity sampled frames per second, as ``cameras`` x ``sample_fps``:
       that many cameras stream the walkers clip (watchlisted people crossing vtest's empty street, 10 fps,
       looped) in real time, each starting at another point of the clip so that crossings spread; the motion
       gate is off so the offered load is the sampler's rate, whatever is in view; live mode as ``ssz run``
       runs it: queues drop the oldest frame when full, and a frame that waited past ``max_queue_age_s``
       when a newer one of its camera waits behind it (not the lossless ``block_when_full``).
    3. One :class:`~actors.shard.CameraShard` actor (MTCNN + dlib in the actor, tracker, confirmer with no
       cooldown, so every crossing is an alert) delivers to the :class:`~actors.alerts.AlertSink` actor on
       the object store for ``duration_s``, checkpointing its resume state to the state-store actor as
       ``ssz run`` does; the sink's stats give the latency percentiles, the model time of the confirming
       frames, and per stage (:data:`actors.alerts.LATENCY_STAGES`) where the rest goes. ``measured_load`` is
       frames processed over the capacity, ``detector_busy`` the fraction of wall time the detector slot was
       busy (the load as it really was: on a shared machine the model runs slower than when calibrated).

    Needs a Ray connection. Returns one JSON-able dict.
    """
    import math
    import tempfile
    import uuid

    import ray

    from actors.alerts import AlertSinkConfig, sink_name, start_sink
    from actors.detectors import LocalDetector
    from actors.shard import LIVE_MAX_QUEUE_AGE_S, STATE_ACTOR, ShardConfig, start_shard, state_store
    from actors.tracker import ConfirmerConfig

    if not ray.is_initialized():
        raise RuntimeError("bench_live_latency needs a Ray connection: call cluster.raycluster.connect() first")
    if not 0 < load <= 1.5:
        raise ValueError(f"load {load} is not a fraction of the capacity in (0, 1.5]: pass e.g. 0.7")
    max_queue_age_s = LIVE_MAX_QUEUE_AGE_S if max_queue_age_s is None else max_queue_age_s
    if len(list(faces_dir.glob("img*.jpg"))) < n_people:
        raise FileNotFoundError(f"{faces_dir} holds fewer than {n_people} face photos (img*.jpg): point "
                                "SSZ_SHARED_DATA at the shared data (faces_deepface)")
    frames, _ = _decode(video, width=width, max_frames=400)
    clip_frames = face_walkers(empty_scene(frames), faces_dir, n_people=n_people)
    tmp = Path(tempfile.mkdtemp(prefix="ssz-live-latency-"))
    clip = write_clip(clip_frames, tmp / "walkers.mp4")
    clip_s = len(clip_frames) / 10.0
    wl, wl_audit = _enrol_walkers(tmp, faces_dir, n_people)
    fn = _WatchlistFaces(wl, wl_audit)
    capacity = model_capacity(fn, clip_frames[::7], batch_size)
    del fn  # the shard loads its own copy
    offered = load * capacity["fps"]
    cameras = max(1, math.floor(offered / sample_fps + 0.5))
    rate = offered / cameras
    city = f"bench{uuid.uuid4().hex[:6]}"
    sink = start_sink(AlertSinkConfig(city=city, audit_path=str(tmp / "alerts-audit.jsonl"), s3=store_settings))
    ray.get(sink.stats.remote())  # started, index loaded
    state_store()
    specs = [CameraSpec(id=f"live-{k}", url=str(clip), realtime=True, fps=10, loop=True,
                        start_pts=round(k * clip_s / cameras, 1) or None) for k in range(cameras)]
    cfg = ShardConfig(shard_id=f"live-{city}", sink_actor=sink_name(city), state_actor=STATE_ACTOR,
                      batch_size=batch_size, max_inflight=max_inflight, max_queue_age_s=max_queue_age_s, cameras=specs,
                      gate=MotionGateConfig(enabled=False), sampler=SamplerConfig(rate_fps=rate),
                      confirmer=ConfirmerConfig(cooldown_s=0))
    shard = start_shard(cfg, lambda: LocalDetector(_WatchlistFaces(wl, wl_audit).warmed(), name="mtcnn+dlib"),
                        max_restarts=0)
    try:
        ray.get(shard.pid.remote())
        t0 = time.time()
        time.sleep(duration_s)
        shard_stats = ray.get(shard.stats.remote())
        wall = time.time() - t0
        stats = ray.get(sink.stats.remote())
    finally:
        ray.kill(shard)
        ray.kill(sink)
        ray.get(state_store().clear.remote([cfg.shard_id]))
    sampled = sum(c.sampled for c in shard_stats.cameras)
    processed = sum(c.processed for c in shard_stats.cameras)
    return {"what": "live mode: frame decoded -> alert record written (S3 evidence + outbox + audit + record), "
                    "real-time cameras, drop-oldest queues, CPU",
            "load_target": load, "capacity": capacity, "offered_fps": round(offered, 2), "cameras": cameras,
            "sample_fps_per_camera": round(rate, 3), "gate": "off (offered load = cameras x sample rate)",
            "clip_s": clip_s, "people": n_people, "duration_s": round(wall, 1),
            "measured_load": round(processed / wall / capacity["fps"], 3),
            "detector_busy": round(shard_stats.detect_busy_s / wall, 3),
            "frames_sampled": sampled, "frames_processed": processed,
            "frames_dropped": sum(c.dropped for c in shard_stats.cameras),
            "frames_stale": sum(c.stale for c in shard_stats.cameras), "max_queue_age_s": max_queue_age_s,
            "detect_ms_p50": shard_stats.detect_ms_p50, "mean_batch": shard_stats.mean_batch,
            "alerts": stats["alerts"], "latency_alerts": stats["latency_alerts"],
            "total_p50_ms": stats["latency_p50_ms"], "total_p99_ms": stats["latency_p99_ms"],
            "model_p50_ms": stats["model_p50_ms"], "model_p99_ms": stats["model_p99_ms"],
            "rest_p50_ms": stats["beyond_model_p50_ms"], "rest_p99_ms": stats["beyond_model_p99_ms"],
            "p99_total_minus_p99_model_ms": None if stats["latency_p99_ms"] is None else
            round(stats["latency_p99_ms"] - stats["model_p99_ms"], 1),
            "stages_ms": stats["stages_ms"],
            "slowest": [{**a, "decoded": round(a["decoded"] - t0, 1)} for a in stats["slowest"]],
            "slowest_note": "decoded: seconds after the cameras started"}


PIPELINE_PARTS = ("decode", "gate", "faces", "ray", "latency")


def bench_pipeline(video: Path | str = VTEST, faces_dir: Path | str | None = None, *,
                   parts: Sequence[str] = PIPELINE_PARTS, face_vtest_frames: int = 795, device: str | None = None,
                   store_settings: Any | None = None, load: float = 0.7, latency_s: float = 120.0) -> dict[str, Any]:
    """Run the measurements named in ``parts`` (of :data:`PIPELINE_PARTS`) and return one JSON-able dict
    (``ssz bench pipeline`` prints it).

    ``ray`` and ``latency`` need a Ray connection, ``latency`` also ``store_settings`` (the object store of the
    alert sink); ``faces`` and ``latency`` need ``faces_dir``. ``load`` and ``latency_s`` set the live-latency
    run (:func:`bench_live_latency`).

    Raises
    ------
    ValueError
        An unknown part, or a part without what it needs.
    FileNotFoundError
        The video is missing.
    """
    import torch

    unknown = sorted(set(parts) - set(PIPELINE_PARTS))
    if unknown:
        raise ValueError(f"unknown pipeline bench part(s) {unknown}: choose from {', '.join(PIPELINE_PARTS)}")
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    video = Path(video)
    if not video.is_file():
        raise FileNotFoundError(f"{video} is missing: install the Debian package opencv-doc or pass another video")
    if {"faces", "latency"} & set(parts) and faces_dir is None:
        raise ValueError("the faces and latency parts need faces_dir: the labelled face photos "
                         "(../shared/data/faces_deepface)")
    if "latency" in parts and store_settings is None:
        raise ValueError("the latency part needs store_settings: the object store the alert sink writes to")
    gate = MotionGateConfig()
    sampler = SamplerConfig()
    out: dict[str, Any] = {}
    if "decode" in parts:
        out["decode"] = bench_decode(video)
    if {"gate", "faces"} & set(parts):
        frames, _ = _decode(video)
        if "gate" in parts:
            out["gate"] = bench_gate(frames, gate)
        if "faces" in parts:
            out["faces"] = bench_faces(frames[:face_vtest_frames], gate, sampler, Path(str(faces_dir)), device=device)
    if "ray" in parts:
        out["ray_overhead"] = bench_ray_overhead(video)
    if "latency" in parts:
        out["alert_latency"] = bench_live_latency(store_settings, Path(str(faces_dir)), video, load=load,
                                                  duration_s=latency_s)
    return out
