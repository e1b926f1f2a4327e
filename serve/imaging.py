"""Decoding untrusted image bytes (HTTP uploads, camera crops) into RGB uint8 arrays, safely.

Checks happen before pixels are decoded: an empty body, a wrong content type, an oversized upload or a
decompression bomb (a small file that claims 50 megapixels) is refused without allocating the image, and a
truncated or corrupt file is refused with a message rather than decoded half-grey.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_TYPES = {"image/jpeg", "image/jpg", "image/png", "image/webp", "image/bmp", "application/octet-stream"}
MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
MIN_SIDE = 16


class ImageDecodeError(ValueError):
    """An upload that is not a usable image; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decode_image(data: bytes, content_type: str | None = None, max_bytes: int = MAX_BYTES,
                 max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an uploaded image to a C-contiguous RGB uint8 (H, W, 3) array, or raise ImageDecodeError."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype and ctype not in ACCEPTED_TYPES:
        raise ImageDecodeError(f"content type {ctype!r} is not an image: send the raw JPEG/PNG/WebP bytes with "
                               "Content-Type image/jpeg, image/png or image/webp", status=415)
    if not data:
        raise ImageDecodeError("the request body is empty: send the image bytes")
    if len(data) > max_bytes:
        raise ImageDecodeError(f"the upload is {len(data) / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB "
                               "limit: send a smaller JPEG", status=413)
    try:
        im = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as e:
        raise ImageDecodeError("the body is not a readable image (JPEG, PNG, WebP or BMP expected)") from e
    w, h = im.size
    if w * h > max_pixels:
        raise ImageDecodeError(f"the image is {w}x{h} ({w * h / 1e6:.0f} megapixels), over the "
                               f"{max_pixels / 1e6:.0f} MP limit: downscale it", status=413)
    if min(w, h) < MIN_SIDE:
        raise ImageDecodeError(f"the image is {w}x{h} px: send at least {MIN_SIDE}x{MIN_SIDE}")
    try:
        im.load()
        rgb = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageDecodeError(f"the image is truncated or corrupt ({e}): send the complete file") from e
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def encode_jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 image (for evidence crops and tests)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
