"""Decoding untrusted image bytes (HTTP uploads, camera crops) into RGB uint8 arrays, safely.

Only JPEG, PNG, WebP, BMP and HEIC/HEIF (the iPhone camera's default, decoded by libheif through ``pillow-heif``)
are decoded (Pillow is told to try no other format, so GIF, TIFF, ICO or EPS — which would go to Ghostscript —
never reach a decoder); other formats (AVIF included) are answered 415 with their name.
Checks happen before pixels are decoded: an empty body, a wrong content type, an oversized upload or a
decompression bomb (a small file that claims hundreds of megapixels) is refused without allocating the
image; an image too small or too thin for the detectors (MTCNN's pyramid needs about 20 px on the short
side after the service's downscale to 1280 px) is refused with the size to send; a truncated or corrupt
file is refused with a message rather than decoded half-grey. Any parser failure is a 400, never a 500.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps
from pillow_heif import register_heif_opener

register_heif_opener()  # Pillow's "HEIF" format; libheif applies the container's rotation and mirror itself

ACCEPTED_TYPES = {"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/webp", "image/bmp", "image/x-ms-bmp",
                  "image/heic", "image/heif", "application/octet-stream",
                  # aliases senders use for the same formats: Windows' and old browsers' PNG and BMP types, and the
                  # HEIF sequence types a phone gives a Live Photo or burst HEIC (its first image is decoded)
                  "image/x-png", "image/x-windows-bmp", "image/heic-sequence", "image/heif-sequence"}
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "HEIF")
MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
MIN_SIDE = 32
PLATE_MIN_SIDE = 8
"""Smallest side of an image sent to the plate reader: a tight crop of a 40 px wide plate is about 18 px tall, so
the plate route and :class:`serve.plate.service.PlateService` accept what the face detectors' :data:`MIN_SIDE`
refuses."""
MAX_ASPECT = 16.0
_SEND = "send a JPEG, PNG, WebP, BMP or HEIC image"
_MAGIC = ((b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
          (b"\x00\x00\x01\x00", "ICO"), (b"%!PS", "PostScript/EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"),
          (b"%PDF", "PDF"), (b"<svg", "SVG"), (b"<?xml", "XML/SVG"), (b"\x00\x00\x00\x0cjP", "JPEG 2000"),
          (b"\xff\x4f\xff\x51", "JPEG 2000"), (b"8BPS", "Photoshop"), (b"\xff\x0a", "JPEG XL"),
          (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"))
_REFUSED_BRANDS = {b"avif": "AVIF", b"avis": "AVIF"}
"""ISO base-media ``ftyp`` brands (bytes 8-12) of formats not decoded (pillow-heif 1.x reads HEIF, not AVIF)."""


class ImageDecodeError(ValueError):
    """An upload that is not a usable image; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def sniff_format(data: bytes) -> str | None:
    """The name of a refused image format recognised by its first bytes (GIF, TIFF, ICO, EPS, ...), or None."""
    head = data[:16]
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return _REFUSED_BRANDS.get(head[8:12]) if head[4:8] == b"ftyp" else None


def _smaller(max_pixels: int, min_side: int) -> str:
    """What to send instead of a photo over ``max_pixels``. Faces are found at 1920 px; a plate is a small part of
    a phone photo, which downscaled to 1920 px would be unreadable: crop around the vehicle or use a smaller mode."""
    if min_side < MIN_SIDE:  # the plate reader (PLATE_MIN_SIDE)
        return (f"crop it around the vehicle, or downscale it to at most {max_pixels / 1e6:.0f} MP (a 200 MP "
                "phone camera: use its 12 or 50 MP mode)")
    return "downscale it (1920 px on the long side is plenty)"


def check_dimensions(w: int, h: int, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> None:
    """Refuse sizes the detectors cannot use: over ``max_pixels`` (413), under ``min_side`` px on a side (default
    :data:`MIN_SIDE`; the plate reader passes :data:`PLATE_MIN_SIDE`) or thinner than :data:`MAX_ASPECT`:1 (400),
    each with what to send instead."""
    if w * h > max_pixels:
        raise ImageDecodeError(f"the image is {w}x{h} ({w * h / 1e6:.0f} megapixels), over the "
                               f"{max_pixels / 1e6:.0f} MP limit: {_smaller(max_pixels, min_side)}", status=413)
    if min(w, h) < min_side:
        what = ("a plate: send at least {0}x{0} px, e.g. the whole frame" if min_side < MIN_SIDE
                else "face detection: send at least {0}x{0} px, with faces of 20 px or more")
        raise ImageDecodeError(f"the image is {w}x{h} px, too small for {what.format(min_side)}")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageDecodeError(f"the image is {w}x{h} px, too thin ({max(w, h) / min(w, h):.0f}:1) for the "
                               f"detectors: send an image at most {MAX_ASPECT:g}:1, e.g. the whole camera frame")


def decode_image(data: bytes, content_type: str | None = None, max_bytes: int | None = MAX_BYTES,
                 max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> np.ndarray:
    """Decode an uploaded image to a C-contiguous RGB uint8 (H, W, 3) array, or raise ImageDecodeError.

    ``max_bytes`` None: no limit on the encoded size (the bytes are in memory already; ``max_pixels`` still bounds
    the decoded array). Every size is checked on the header, before a pixel is decoded; the EXIF orientation is
    applied. Whatever ``max_pixels``, a header claiming over twice Pillow's ``Image.MAX_IMAGE_PIXELS`` (about 179 MP)
    is refused as a decompression bomb.

    Raises
    ------
    ImageDecodeError
        415 for a content type or format other than JPEG/PNG/WebP/BMP/HEIC, 413 for too many bytes or pixels
        (including decompression bombs), 400 for empty, corrupt, truncated, too small or too thin images.
    """
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype and ctype not in ACCEPTED_TYPES:
        hint = (" (curl sends this type for --data-binary unless told otherwise: add -H 'Content-Type: image/jpeg')"
                if ctype == "application/x-www-form-urlencoded" else "")
        raise ImageDecodeError(f"content type {ctype!r} is not accepted{hint}: send the raw image bytes with "
                               "Content-Type image/jpeg, image/png, image/webp, image/bmp or image/heic, or the image "
                               "as the one file of a multipart/form-data form", status=415)
    if not data:
        raise ImageDecodeError(f"empty image (no bytes): {_SEND}")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageDecodeError(f"the upload is {len(data) / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB "
                               "limit: send a smaller JPEG", status=413)
    refused = sniff_format(data)
    if refused:
        raise ImageDecodeError(f"{refused} images are not accepted: {_SEND}", status=415)
    # The bomb guard is ``max_pixels``, checked on the size the header claims before any pixel is decoded
    # (Pillow's own guard, MAX_IMAGE_PIXELS, would refuse a 90 MP photo that a caller's limit allows, and is
    # silenced here; its hard error at twice that still stands).
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as e:  # Pillow's hard limit: twice MAX_IMAGE_PIXELS
        ceiling = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        limit = f"{min(max_pixels, ceiling) / 1e6:.0f} MP"
        raise ImageDecodeError(f"the image header claims too many pixels (over {ceiling / 1e6:.0f} MP: a decompression "
                               f"bomb?), over the {limit} limit: " + (_smaller(min(max_pixels, ceiling), min_side)
                                                                      if min_side < MIN_SIDE else
                                                                      f"send a photo of at most {limit}"),
                               status=413) from e
    except Exception as e:  # any parser failure on untrusted bytes is the sender's problem, not a server fault
        raise ImageDecodeError(f"the bytes are not a readable image: {_SEND}") from e
    w, h = im.size
    check_dimensions(w, h, max_pixels, min_side)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # no copy of a big photo
            if im.mode in WIDE_GREY_MODES:
                return _wide_grey_to_rgb(im)
            rgb = im if im.mode == "RGB" else im.convert("RGB")
    except Exception as e:
        raise ImageDecodeError(f"the image is truncated or corrupt ({type(e).__name__}): send the complete file") from e
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
"""Pillow modes of grey images of more than 8 bits (a 16-bit grey PNG opens as ``I;16``, in older Pillow as ``I``).
Pillow's own conversion of these to ``L`` or ``RGB`` clips every value above 255 instead of scaling: a 16-bit grey
PNG (a thermal or IR camera's export) came out all white, and no plate or face was found in it."""


def _wide_grey_to_rgb(im: Image.Image) -> np.ndarray:
    """A 16-bit grey image (:data:`WIDE_GREY_MODES`; ``I`` read as 16-bit, the most a PNG holds) as RGB uint8: the
    high byte of each value (65535 -> 255, ``v * 257`` -> ``v``)."""
    wide = np.asarray(im)
    if wide.dtype.itemsize > 2:
        wide = np.clip(wide, 0, 65535)
    grey = (wide >> 8).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))


def encode_jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 image (for evidence crops and tests)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
