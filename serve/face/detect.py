"""Face detection with facenet-pytorch's MTCNN (weights ship in the wheel, so it runs offline).

:class:`FaceDetector` runs one batched MTCNN pass per distinct image size (camera frames of one stream share a
size, so a batch of frames is one pass), converts MTCNN's numpy object arrays to plain floats, drops faces below
the probability threshold (0.95 by default: lower values find "faces" on table tops) and maps boxes and landmarks
back to input-image pixels when large images were downscaled for speed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import cv2
import numpy as np

from serve.devices import torch_device
from serve.face.images import check_images
from serve.face.schemas import FaceDetection

DEFAULT_MIN_PROB = 0.95


class FaceDetector:
    """Batched MTCNN face detector returning :class:`FaceDetection` lists, one list per input image."""

    def __init__(self, min_prob: float = DEFAULT_MIN_PROB, min_face_size: int = 20, max_side: int = 1280,
                 device: str = "cpu") -> None:
        """Load MTCNN's three networks (P/R/O-Net) from the facenet-pytorch wheel.

        ``max_side``: images whose longer side exceeds it are downscaled before detection (MTCNN's image pyramid
        grows with the image; a 4000 px photo takes seconds). Results are in original pixels.
        """
        from facenet_pytorch import MTCNN

        if not 0.0 < min_prob <= 1.0:
            raise ValueError(f"min_prob must be in (0, 1], got {min_prob}")
        self.min_prob = float(min_prob)
        self.max_side = int(max_side)
        self.device = torch_device(device)
        self._mtcnn = MTCNN(keep_all=True, select_largest=False, min_face_size=min_face_size, post_process=False,
                            device=self.device)
        self._mtcnn.eval()

    def _scaled(self, img: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = img.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        if s >= 1.0:
            return img, 1.0
        small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(small), s

    def detect(self, images: Sequence[np.ndarray]) -> list[list[FaceDetection]]:
        """Faces in each RGB uint8 image, most probable first; one MTCNN pass per distinct (downscaled) size."""
        imgs = check_images(images)
        scaled = [self._scaled(im) for im in imgs]
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, (im, _) in enumerate(scaled):
            groups[im.shape[:2]].append(i)
        out: list[list[FaceDetection]] = [[] for _ in imgs]
        for idx in groups.values():
            batch = np.stack([scaled[i][0] for i in idx])
            boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
            for j, i in enumerate(idx):
                out[i] = self._convert(boxes[j], probs[j], points[j], scaled[i][1], imgs[i].shape)
        return out

    def _convert(self, boxes: object, probs: object, points: object, s: float,
                 shape: tuple[int, ...]) -> list[FaceDetection]:
        if boxes is None:
            return []
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / s
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        lm = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2) / s
        h, w = shape[:2]
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
        dets = [
            FaceDetection(box=(float(x1), float(y1), float(x2), float(y2)), prob=float(min(1.0, pr)),
                      landmarks=[(float(x), float(y)) for x, y in pts])
            for (x1, y1, x2, y2), pr, pts in zip(b, p, lm, strict=True)
            if pr >= self.min_prob and x2 > x1 and y2 > y1
        ]
        dets.sort(key=lambda d: d.prob, reverse=True)
        return dets
