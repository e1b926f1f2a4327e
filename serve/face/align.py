"""Face alignment: a similarity transform from the 5 MTCNN landmarks to the crop each embedding engine wants.

``DLIB_TEMPLATE_150`` places MTCNN's 5 points where ``dlib.get_face_chip(img, shape5, 150, 0.25)`` puts them: it
was measured here by running dlib's 5-point shape predictor and ``get_face_chip_details`` on 26 faces (the
scikit-image astronaut and deepface photos), mapping the MTCNN landmarks into chip coordinates (mean spread
1-4 px) and averaging, then made left/right symmetric. dlib's ResNet was trained on such chips, so feeding it
chips aligned this way needs no second landmark model.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# left eye, right eye, nose tip, left mouth corner, right mouth corner in a 150x150 dlib chip (padding 0.25)
DLIB_TEMPLATE_150 = np.array(
    [[46.7, 45.2], [100.9, 45.2], [73.8, 78.1], [47.8, 99.5], [99.8, 99.5]], dtype=np.float64)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 least-squares similarity transform (rotation, uniform scale, shift) taking ``src`` points to ``dst``.

    Umeyama's closed form (scikit-image); raises ValueError for degenerate landmarks (all points coincide).
    """
    from skimage.transform import SimilarityTransform

    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    t = SimilarityTransform.from_estimate(src, dst)
    if not t or not np.all(np.isfinite(t.params)):
        raise ValueError(f"landmarks {src.tolist()} are degenerate: no similarity transform to the template")
    return np.asarray(t.params[:2], dtype=np.float64)


def align(image: np.ndarray, landmarks: Sequence[Sequence[float]], template: np.ndarray = DLIB_TEMPLATE_150,
          size: int = 150) -> np.ndarray:
    """Warp ``image`` so the 5 landmarks land on ``template``; returns a contiguous (size, size, 3) uint8 chip."""
    m = similarity(np.asarray(landmarks, dtype=np.float64), template)
    chip = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(chip)


def crop_box(image: np.ndarray, box: Sequence[float], size: int = 160, margin: float = 0.0) -> np.ndarray:
    """facenet-pytorch's crop: the box grown by ``margin`` (pixels of the output scale), resized to size x size.

    This is the crop the facenet InceptionResnetV1 weights were trained on (MTCNN box, no rotation).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    mx = margin * (x2 - x1) / max(1.0, size - margin)
    my = margin * (y2 - y1) / max(1.0, size - margin)
    h, w = image.shape[:2]
    a = (int(max(0, x1 - mx / 2)), int(max(0, y1 - my / 2)), int(min(w, x2 + mx / 2)), int(min(h, y2 + my / 2)))
    if a[2] <= a[0] or a[3] <= a[1]:
        raise ValueError(f"face box {list(box)} lies outside the {w}x{h} image")
    crop = image[a[1]:a[3], a[0]:a[2]]
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
