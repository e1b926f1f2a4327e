"""The detector interface of the camera shards and the detectors that plug into it, by name.

A :class:`Detector` takes a batch of :class:`FrameItem` (sampled, downsized, contiguous RGB frames) and answers
one list of :class:`~actors.tracker.Detection` per frame, with boxes in the item's pixels and, when the model
matched the watchlist or hotlist, the subject. Detectors are asynchronous so a shard keeps several batches in
flight. Registered in :data:`DETECTOR_REGISTRY` (build one with :func:`make_detector`):

* ``local``: :class:`LocalDetector` calls a Python function in a worker thread (tests, benchmarks);
* ``none``: a local detector that finds nothing (a pipeline without models);
* ``serve``: :class:`ServeDetector` calls any Ray Serve deployment method;
* ``faces``: :class:`FaceServeDetector`, serve/face's ``FaceDeployment.identify``;
* ``plates``: :class:`PlateServeDetector`, serve/plate's ``PlateDeployment.read``;
* ``routing``: :class:`RoutingDetector` sends each camera's frames to the detector of its camera kind;
* ``truth``: :class:`TruthDetector` reads the ground truth of synthetic cameras instead of running a model
  (city-scale runs and chaos benchmarks on machines that cannot carry the models: alerts known in advance).
"""

from __future__ import annotations

import asyncio
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from actors.sources.base import CameraSpec
from actors.sources.synthetic import walker_frames, walkers
from actors.tracker import Detection
from serve.plugins import make
from twin.kinds import CameraKind


@dataclass(slots=True)
class FrameItem:
    """A sampled frame on its way to a detector: the (cropped, downsized) contiguous RGB image and its origin.

    ``scale`` is detector pixels per source pixel and ``offset`` the ROI's top-left corner in source pixels,
    so boxes map back with ``x / scale + offset_x``. ``epoch`` is the stream-clock epoch of the source frame,
    ``clock_offset`` its offset (``pts + clock_offset`` runs on over stream restarts) and ``source_size`` its
    (width, height): the tracker starts again when the epoch or the size changes.
    """

    camera_id: str
    seq: int
    ts: float
    pts: float | None
    image: np.ndarray
    scale: float = 1.0
    offset: tuple[int, int] = (0, 0)
    t_queued: float = 0.0  # wall-clock time (Unix s) it passed the gate and sampler and was queued
    epoch: int = 0
    source_size: tuple[int, int] | None = None
    clock_offset: float = 0.0

    @property
    def time(self) -> float:
        """Stream time (continued over restarts) if known, else wall-clock time: the clock used for sampling,
        tracking and alerts."""
        return self.pts + self.clock_offset if self.pts is not None else self.ts


class Detector(ABC):
    """Asynchronous batch detector: one list of :class:`Detection` per frame, boxes in the item's pixels."""

    name: str = "detector"

    @abstractmethod
    async def detect(self, batch: Sequence[FrameItem]) -> list[list[Detection]]:
        """Detect (and match against the watchlist/hotlist) on every frame of ``batch``."""

    async def aclose(self) -> None:
        """Release resources (handles, pools); the default does nothing."""
        return None


DetectFn = Callable[[list[np.ndarray]], list[list[Detection]]]


class LocalDetector(Detector):
    """Calls a plain Python function ``fn(images) -> detections per image`` in a worker thread."""

    def __init__(self, fn: DetectFn, name: str = "local") -> None:
        self.fn = fn
        self.name = name

    async def detect(self, batch: Sequence[FrameItem]) -> list[list[Detection]]:
        """Run ``fn`` on the batch's images off the event loop and check it answered once per image."""
        out = await asyncio.to_thread(self.fn, [b.image for b in batch])
        if len(out) != len(batch):
            raise ValueError(f"detector {self.name} returned {len(out)} results for {len(batch)} frames")
        return out


class ServeDetector(Detector):
    """Calls a Ray Serve deployment through a handle created lazily inside the actor (never pickled in).

    The deployment method receives ``[{"camera_id", "seq", "ts", "image"}]`` and returns, per frame, a list of
    dicts with :class:`Detection` fields (``box``, ``score``, ``label``, ``subject_id``, ``match_score``).
    The lead wires the face and plate apps here; ``encode``/``decode`` adapt other payloads.
    """

    def __init__(self, deployment: str, app_name: str, method: str = "detect", name: str | None = None,
                 encode: Callable[[Sequence[FrameItem]], Any] | None = None,
                 decode: Callable[[Any], list[list[Detection]]] | None = None) -> None:
        self.deployment, self.app_name, self.method = deployment, app_name, method
        self.name = name or f"{app_name}/{deployment}"
        self._encode = encode
        self._decode = decode
        self._handle: Any = None

    async def detect(self, batch: Sequence[FrameItem]) -> list[list[Detection]]:
        """Send the batch to the deployment and convert its answer."""
        if self._handle is None:
            from ray import serve

            self._handle = serve.get_deployment_handle(self.deployment, app_name=self.app_name)
        payload = self._encode(batch) if self._encode else [
            {"camera_id": b.camera_id, "seq": b.seq, "ts": b.time, "image": b.image} for b in batch]
        raw = await getattr(self._handle, self.method).remote(payload)
        if self._decode:
            return self._decode(raw)
        return [[Detection(**{**d, "box": tuple(d["box"])}) for d in dets] for dets in raw]


class FaceServeDetector(Detector):
    """serve/face's ``FaceDeployment.identify``: one call per frame, sent together so Serve batches them.

    A face becomes a :class:`Detection` (label ``face``, score = detector probability); its best candidate
    with ``match`` true becomes ``subject_id`` (the warrant number) and ``match_score``. Faces below
    ``min_prob`` are dropped (MTCNN finds faces on table tops below ~0.95). Non-matching candidates are
    ignored and no embedding ever leaves the Serve replica.
    """

    def __init__(self, app_name: str = "face", deployment: str = "FaceDeployment", min_prob: float = 0.95,
                 list_name: str | None = None) -> None:
        """``list_name``: identify against that named watchlist (a simulation's) instead of the operational one."""
        self.app_name, self.deployment, self.min_prob, self.list_name = app_name, deployment, min_prob, list_name
        self.name = f"{app_name}/{deployment}"
        self._handle: Any = None

    @staticmethod
    def to_detections(image_faces: Any, min_prob: float) -> list[Detection]:
        """Convert one ``ImageFaces`` (pydantic object or dict) into detections with watchlist matches."""
        def get(o: Any, k: str) -> Any:
            return o[k] if isinstance(o, dict) else getattr(o, k)

        out = []
        for face in get(image_faces, "faces"):
            det = get(face, "detection")
            prob = float(get(det, "prob"))
            if prob < min_prob:
                continue
            best = next((c for c in get(face, "candidates") if get(c, "match")), None)
            out.append(Detection(tuple(float(v) for v in get(det, "box")), prob, "face",
                                 str(get(best, "warrant_no")) if best is not None else None,
                                 float(get(best, "score")) if best is not None else 0.0))
        return out

    async def detect(self, batch: Sequence[FrameItem]) -> list[list[Detection]]:
        """Identify faces on every frame of the batch (concurrent calls, batched by Serve)."""
        if self._handle is None:
            from ray import serve

            self._handle = serve.get_deployment_handle(self.deployment, app_name=self.app_name)
        kw = {"list_name": self.list_name} if self.list_name else {}
        answers = await asyncio.gather(*(self._handle.identify.remote(b.image, **kw) for b in batch))
        return [self.to_detections(a, self.min_prob) for a in answers]


class PlateServeDetector(Detector):
    """serve/plate's ``PlateDeployment.read``: one call per frame, sent together so Serve batches them.

    A read plate becomes a :class:`Detection` (label ``plate``, score = OCR confidence); its best hotlist
    match becomes ``subject_id`` (the hotlist entry id) with ``match_score`` 1 - distance.
    """

    def __init__(self, app_name: str = "plate", deployment: str = "PlateDeployment", min_confidence: float = 0.0,
                 list_name: str | None = None):
        """``list_name``: match against that named hotlist (a simulation's) instead of the operational one."""
        self.app_name, self.deployment, self.min_confidence = app_name, deployment, min_confidence
        self.list_name = list_name
        self.name = f"{app_name}/{deployment}"
        self._handle: Any = None

    @staticmethod
    def to_detections(reads: Sequence[Any], min_confidence: float = 0.0) -> list[Detection]:
        """Convert one frame's ``PlateRead`` list (pydantic objects or dicts) into detections."""
        def get(o: Any, k: str) -> Any:
            return o[k] if isinstance(o, dict) else getattr(o, k)

        out = []
        for r in reads:
            conf = float(get(r, "confidence"))
            if conf < min_confidence:
                continue
            hits = sorted(get(r, "hotlist"), key=lambda m: float(get(m, "distance")))
            best = hits[0] if hits else None
            out.append(Detection(tuple(float(v) for v in get(r, "box")), conf, "plate",
                                 str(get(get(best, "entry"), "id")) if best is not None else None,
                                 max(0.0, 1.0 - float(get(best, "distance"))) if best is not None else 0.0))
        return out

    async def detect(self, batch: Sequence[FrameItem]) -> list[list[Detection]]:
        """Read plates on every frame of the batch (concurrent calls, batched by Serve)."""
        if self._handle is None:
            from ray import serve

            self._handle = serve.get_deployment_handle(self.deployment, app_name=self.app_name)
        kw = {"list_name": self.list_name} if self.list_name else {}
        answers = await asyncio.gather(*(self._handle.read.remote(b.image, **kw) for b in batch))
        return [self.to_detections(a, self.min_confidence) for a in answers]


class RoutingDetector(Detector):
    """Sends each camera's frames to the detector of its kind (face cameras to faces, plate cameras to plates).

    ``routes`` maps a camera kind (:class:`~twin.kinds.CameraKind`) to its detector, ``camera_kind`` a camera id
    to its kind; cameras not in ``camera_kind`` use ``default``.
    """

    def __init__(self, routes: dict[str, Detector], camera_kind: dict[str, str],
                 default: str = CameraKind.cctv) -> None:
        missing = {default, *camera_kind.values()} - set(routes)
        if missing:
            raise ValueError(f"no detector for camera kind(s) {sorted(missing)}; have {sorted(routes)}")
        self.routes, self.camera_kind, self.default = routes, camera_kind, default
        self.name = "+".join(d.name for d in routes.values())

    async def detect(self, batch: Sequence[FrameItem]) -> list[list[Detection]]:
        """Split the batch by camera kind, run the detectors concurrently, return results in batch order."""
        groups: dict[str, list[int]] = {}
        for i, b in enumerate(batch):
            groups.setdefault(self.camera_kind.get(b.camera_id, self.default), []).append(i)
        answers = await asyncio.gather(*(self.routes[k].detect([batch[i] for i in idx]) for k, idx in groups.items()))
        out: list[list[Detection]] = [[] for _ in batch]
        for (_, idx), dets in zip(groups.items(), answers, strict=True):
            for i, d in zip(idx, dets, strict=True):
                out[i] = d
        return out

    async def aclose(self) -> None:
        """Close every routed detector."""
        for d in self.routes.values():
            await d.aclose()


class TruthDetector(Detector):
    """Reads what synthetic cameras draw (:func:`actors.sources.synthetic.walkers`) instead of running a model.

    Every walker at least ``min_visible`` in the picture is a detection (label ``face`` on CCTV cameras,
    ``plate`` on plate cameras, per ``labels``); one walker in ``wanted_every`` (a stable hash of camera and
    walker) is a listed subject ``GT-<seed>-<k>``, so the alerts a run must raise are known in advance
    (:func:`expected_truth_alerts`). It costs microseconds per frame: the shards, gate, sampler, tracker,
    confirmer and sink are what a run measures. Cameras not in ``cameras`` get no detections.

    Parameters
    ----------
    cameras
        Camera id -> its synthetic :class:`~actors.sources.base.CameraSpec` (``sim://`` without a script).
    labels
        Camera id -> detection label (``face`` or ``plate``); default ``face``.
    wanted_every
        One walker in this many is a listed subject (>= 1).
    min_visible
        Fraction of a walker's width that must be in the picture for a detection (0-1].
    """

    name = "truth"

    def __init__(self, cameras: dict[str, CameraSpec], labels: dict[str, str] | None = None,
                 wanted_every: int = 10, min_visible: float = 0.5) -> None:
        if wanted_every < 1 or not 0 < min_visible <= 1:
            raise ValueError(f"wanted_every must be >= 1 and min_visible in (0, 1], got {wanted_every}, {min_visible}")
        bad = [c for c, s in cameras.items() if s.scheme != "sim" or s.sim_script is not None or s.sim_video]
        if bad:
            raise ValueError(f"the truth detector reads synthetic sim:// cameras only; not: {bad[:3]}")
        self.cameras, self.labels = cameras, labels or {}
        self.wanted_every, self.min_visible = wanted_every, min_visible

    async def detect(self, batch: Sequence[FrameItem]) -> list[list[Detection]]:
        """The visible walkers of each frame, in the item's pixels, listed ones with their subject."""
        out: list[list[Detection]] = []
        for b in batch:
            spec = self.cameras.get(b.camera_id)
            if spec is None or b.pts is None:
                out.append([])
                continue
            label = self.labels.get(b.camera_id, "face")
            s, (ox, oy) = b.scale, b.offset
            dets = []
            for w in truth_walkers(spec, frame_number(spec, b.pts), self.min_visible):
                subject = truth_subject(spec, w.k, self.wanted_every)
                x1, y1, x2, y2 = w.box
                dets.append(Detection(((x1 - ox) * s, (y1 - oy) * s, (x2 - ox) * s, (y2 - oy) * s), 0.99, label,
                                      subject, 0.95 if subject else 0.0))
            out.append(dets)
        return out


def frame_number(spec: CameraSpec, pts: float) -> int:
    """The frame number of a synthetic camera's frame at stream time ``pts``."""
    return round((pts - spec.sim_epoch) * spec.fps)


def truth_walkers(spec: CameraSpec, n: int, min_visible: float = 0.5) -> list[Any]:
    """The walkers of frame ``n`` that :class:`TruthDetector` detects (at least ``min_visible`` in view)."""
    return [w for w in walkers(spec, n) if (w.box[2] - w.box[0]) >= min_visible * w.full_width]


def truth_subject(spec: CameraSpec, k: int, wanted_every: int) -> str | None:
    """The listed subject walker ``k`` of a synthetic camera stands for, or None (one in ``wanted_every``)."""
    h = int(hashlib.sha256(f"{spec.id}:{spec.seed}:{k}".encode()).hexdigest()[:8], 16)
    return f"GT-{spec.seed}-{k}" if h % wanted_every == 0 else None


def expected_truth_alerts(spec: CameraSpec, n_to: int, *, wanted_every: int, min_matches: int,
                          min_visible: float = 0.5, n_from: int = 0) -> dict[str, int]:
    """The alerts a synthetic camera must raise with :class:`TruthDetector` when every frame is sampled (frames in
    the camera's ``sim_outages`` are never sent).

    Parameters
    ----------
    spec
        The camera.
    n_to
        The last frame number played (inclusive).
    wanted_every, min_matches, min_visible
        As the detector and the confirmer were configured.
    n_from
        The first frame number played.

    Returns
    -------
    dict
        Subject -> the frame number that confirms it (its ``min_matches``-th detected frame), for every listed
        walker confirmed within ``n_from .. n_to``.
    """
    period = max(2, int(spec.fps * 12))

    def silent(t: float) -> bool:  # the camera sends no frame in its outages (sim_outages)
        return any(a <= t < b for a, b in spec.sim_outages)

    out = {}
    for k in range(max(0, n_from // period - 1), n_to // period + 1):
        subject = truth_subject(spec, k, wanted_every)
        if subject is None:
            continue
        seen = [n for n in walker_frames(spec, k) if n >= n_from and not silent(n / spec.fps)
                and any(w.k == k for w in truth_walkers(spec, n, min_visible))]
        if len(seen) >= min_matches and seen[min_matches - 1] <= n_to:
            out[subject] = seen[min_matches - 1]
    return out


def no_detections(images: list[np.ndarray]) -> list[list[Detection]]:
    """A detector function that finds nothing (one empty list per image)."""
    return [[] for _ in images]


DETECTOR_REGISTRY: dict[str, Callable[..., Detector]] = {
    "local": LocalDetector,
    "none": lambda: LocalDetector(no_detections, name="none"),
    "serve": ServeDetector,
    "faces": FaceServeDetector,
    "plates": PlateServeDetector,
    "routing": RoutingDetector,
    "truth": TruthDetector,
}
"""Detectors by name; the values are called with the options of :func:`make_detector`."""


def make_detector(name: str, **options: Any) -> Detector:
    """The detector registered as ``name``, built with ``options``.

    Parameters
    ----------
    name
        A key of :data:`DETECTOR_REGISTRY`.
    **options
        Keyword arguments of that detector (e.g. ``app_name="ssz"`` for ``faces``).

    Raises
    ------
    ValueError
        When no detector of that name is registered (the message lists the known names).
    """
    return make(DETECTOR_REGISTRY, "detector", name, **options)
