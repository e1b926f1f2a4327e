"""Checks and conversions for input images: the face service takes RGB uint8 arrays of shape (H, W, 3)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_PIXELS = 40_000_000
MIN_SIDE = 16


class ImageError(ValueError):
    """An input image cannot be used; the message names the image and says what to send instead."""


def check_image(img: object, name: str = "image") -> np.ndarray:
    """Return ``img`` as a C-contiguous RGB uint8 (H, W, 3) array, or raise ImageError saying what is wrong.

    Grey (H, W) images are expanded to 3 channels and RGBA drops alpha, so callers can pass what a decoder gives.
    """
    if not isinstance(img, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array (H, W, 3) of uint8 RGB, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise ImageError(f"{name}: expected dtype uint8, got {img.dtype}; convert with (x * 255).astype(np.uint8) "
                         "for 0..1 floats")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ImageError(f"{name}: expected shape (H, W, 3) RGB, got {img.shape}")
    if img.shape[2] == 4:
        img = img[:, :, :3]
    h, w = img.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{name}: {w}x{h} px is too small; send at least {MIN_SIDE}x{MIN_SIDE}")
    if h * w > MAX_PIXELS:
        raise ImageError(f"{name}: {w}x{h} px is over the {MAX_PIXELS // 1_000_000} megapixel limit; downscale it")
    return np.ascontiguousarray(img)


def check_images(images: Sequence[object]) -> list[np.ndarray]:
    """:func:`check_image` on each element, naming them image[0], image[1], ..."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    if not isinstance(images, list | tuple):
        raise ImageError(f"expected a list of images, got {type(images).__name__}")
    return [check_image(im, f"image[{i}]") for i, im in enumerate(images)]


def load_rgb(path: str) -> np.ndarray:
    """Read an image file as RGB uint8 (EXIF orientation applied), for tools, evaluation and enrolment."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
