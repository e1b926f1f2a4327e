"""Pixel boxes ``(x1, y1, x2, y2)`` (top-left inclusive, bottom-right exclusive): the one intersection over
union of the code base, for the tracker (:mod:`actors.tracker`) and the plate localisers alike."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """Pairwise intersection over union of two lists of boxes.

    Parameters
    ----------
    a, b
        Boxes ``(x1, y1, x2, y2)`` in pixels; ``len(a)`` = n, ``len(b)`` = m.

    Returns
    -------
    numpy.ndarray
        Shape (n, m), float64 in [0, 1]; 0 where the union is empty.
    """
    if not a or not b:
        return np.zeros((len(a), len(b)))
    A = np.asarray(a, dtype=np.float64)[:, None, :]
    B = np.asarray(b, dtype=np.float64)[None, :, :]
    iw = np.clip(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0, None)
    ih = np.clip(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0, None)
    inter = iw * ih
    area_a = (A[..., 2] - A[..., 0]) * (A[..., 3] - A[..., 1])
    area_b = (B[..., 2] - B[..., 0]) * (B[..., 3] - B[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes ``(x1, y1, x2, y2)`` (pixels), in [0, 1]; 0 for an empty union."""
    return float(iou_matrix([a], [b])[0, 0])
