"""OCR engines for rectified Thai plates behind one interface, :class:`OcrEngine`, and their registry.

An engine reads a batch of *rectified* plates (BGR, produced by :func:`serve.plate.localise.rectify`: car plates
``RECT_H`` × ``RECT_W``, motorcycle plates at their own aspect) and returns the raw text of the registration and
the second line with a confidence. Parsing and province snapping happen afterwards in :mod:`serve.plate.parse`,
the same for every engine. Engines are built by name with :func:`make_ocr_engine` from
:data:`OCR_ENGINE_REGISTRY`.

Engines:

- ``model`` (default), :class:`LearnedEngine`: the project's trained recogniser (:mod:`serve.plate.model`), all
  plates of a batch in one forward pass, per-character confidences, car and motorcycle layouts.
- ``tesseract``, :class:`TesseractEngine`: Debian ``tesseract-ocr`` + ``tesseract-ocr-tha``. Each line is
  cropped from the layout geometry and read with ``--psm 7``; the registration line is split at its widest
  gap into the letter group (read glyph by glyph; whitelist Thai consonants and digits, ``tha``) and the
  number (digits only).
  A batch costs five tesseract processes (glyphs, category digits, numbers ×2, provinces; every plate of the
  batch in one call through tesseract's image-list input), which is where batching gains its throughput.
- :class:`PaddleEngine`: a PP-OCR Thai recognition model (PaddleOCR 3.x ``TextRecognition``) loaded from a
  local folder or from the ``models`` bucket of the object store. ``paddleocr`` is optional:
  ``pip install .[paddle]``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, Field

from serve.plate.parse import DIGITS, PLATE_CONSONANTS
from serve.plate.render import LINE_BOXES
from serve.state import ssz_home

log = logging.getLogger(__name__)


class OcrError(RuntimeError):
    """The OCR engine cannot run; the message says what is missing and how to install or provide it."""


class PlateText(BaseModel):
    """Raw OCR output for one plate before parsing."""

    registration: str = Field(description="registration as read, e.g. '1กข1234' or 'ผ-9324'")
    province: str = Field(description="second line as read (not yet snapped): a province or a region line")
    confidence: float = Field(ge=0.0, le=1.0, description="engine confidence of the whole read, 0..1")
    char_confidences: list[float] = Field(default_factory=list,
                                          description="confidence of each registration character, 0..1 "
                                                      "(empty when the engine gives none)")
    vehicle: Literal["car", "motorcycle"] | None = Field(default=None, description="layout read, when known")


class OcrEngine(ABC):
    """Reads registration and second lines from rectified plates. Implementations must be thread-safe.

    ``min_confidence``: reads below it are not plates (chosen on the rendered validation set for the learned
    engine; 0 for engines without a calibrated confidence).
    """

    name: str = "abstract"
    min_confidence: float = 0.0

    @abstractmethod
    def read(self, plates: list[np.ndarray]) -> list[PlateText]:
        """Read a batch of rectified plates (``RECT_H`` × ``RECT_W`` BGR uint8); one result per plate."""


def line_crop(rect: np.ndarray, line: str) -> np.ndarray:
    """Crop ``line`` ('registration' or 'province') from a rectified plate using the renderer's layout."""
    h, w = rect.shape[:2]
    x0, y0, x1, y1 = LINE_BOXES[line]
    return rect[int(y0 * h): int(y1 * h), int(x0 * w): int(x1 * w)]


def binarise(crop: np.ndarray, height: int) -> np.ndarray:
    """Grey, upscale to ``height`` px (cubic), Otsu threshold, dark text on white, 10 px white border.

    Tesseract's LSTM reads best with text about 30-50 px high on a clean background; plate crops from
    CCTV are 10-20 px, so upscaling and binarising is the cheapest accuracy gain.
    """
    g = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    s = height / max(1, g.shape[0])
    g = cv2.resize(g, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
    _, b = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if (b > 0).mean() < 0.5:  # light text on a dark plate (or a night capture): make text dark
        b = 255 - b
    return cv2.copyMakeBorder(b, 10, 10, 10, 10, cv2.BORDER_CONSTANT, value=255)


def prepare_line(crop: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(grey for OCR, binary for layout) of a line crop, both upscaled to ``height``, dark text, 10 px border.

    Tesseract reads the contrast-stretched grey better than our Otsu binary (measured on 40 rendered plates
    per level, registration / province right: moderate 28/36 vs 25/29, mild 39/39 vs 36/39, clean 29/30 vs
    27/30); the binary only decides where the gaps between glyphs are.
    """
    g = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    s = height / max(1, g.shape[0])
    g = cv2.resize(g, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
    g = cv2.normalize(g, None, 0, 255, cv2.NORM_MINMAX)
    _, b = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if (b > 0).mean() < 0.5:
        b, g = 255 - b, 255 - g
    _clear_edge_strokes(b, g)
    pad = {"top": 10, "bottom": 10, "left": 10, "right": 10, "borderType": cv2.BORDER_CONSTANT, "value": 255}
    return cv2.copyMakeBorder(g, **pad), cv2.copyMakeBorder(b, **pad)


def _clear_edge_strokes(binary: np.ndarray, grey: np.ndarray) -> None:
    """Whiten thin ink runs at the left/right ends of a line (the plate's border stroke), in place."""
    h, w = binary.shape
    ink = (binary < 128).sum(axis=0) > 0
    for cols in (range(w), range(w - 1, -1, -1)):
        run = []
        for x in cols:
            if ink[x]:
                run.append(x)
            elif run or abs(x - cols[0]) > 0.06 * w:
                break
        if run and len(run) < 0.12 * h and abs(run[0] - cols[0]) <= 0.06 * w:
            binary[:, run] = 255
            grey[:, run] = 255


def split_registration(binary: np.ndarray, image: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a registration line at its widest inner gap into (letter group, number).

    The gap is found in ``binary``; the pieces are cut from ``image`` (same geometry; default ``binary``).
    The letter group (optional category digit + consonants) and the number are separated by a space on
    every Thai plate. If no clear gap exists the whole line is returned as the letter group and an empty
    image as the number, and the caller reads the line in one piece.
    """
    src = binary if image is None else image
    ink = (binary < 128).sum(axis=0)
    cols = np.flatnonzero(ink > 0)
    if cols.size == 0:
        return src, src[:, :0]
    # ignore thin residues of the plate border at the crop's left/right edges
    left, right = int(cols[0]), int(cols[-1])
    empty = ink[left: right + 1] == 0
    best_len, best_start, run_start = 0, -1, None
    for i, e in enumerate(np.append(empty, False)):
        if e and run_start is None:
            run_start = i
        elif not e and run_start is not None:
            if i - run_start > best_len:
                best_len, best_start = i - run_start, run_start
            run_start = None
    if best_len < binary.shape[0] * 0.12:
        return src, src[:, :0]
    cut = left + best_start + best_len // 2
    pad = np.full((binary.shape[0], 10), 255, np.uint8)
    return np.hstack([src[:, :cut], pad]), np.hstack([pad, src[:, cut:]])


def segment_glyphs(binary: np.ndarray, image: np.ndarray | None = None) -> list[np.ndarray]:
    """Cut a letter group into glyph images at empty columns of ``binary`` (slivers merge into a neighbour).

    Pieces come from ``image`` (same geometry; default ``binary``), padded with white on both sides.
    """
    src = binary if image is None else image
    h = binary.shape[0]
    ink = (binary < 128).sum(axis=0)
    runs: list[list[int]] = []
    start = None
    for i, v in enumerate(np.append(ink, 0)):
        if v > 0 and start is None:
            start = i
        elif v == 0 and start is not None:
            if i - start >= 2:
                runs.append([start, i])
            start = None
    merged: list[list[int]] = []
    for r in runs:
        if merged and r[1] - r[0] < 0.15 * h:
            merged[-1][1] = r[1]
        else:
            merged.append(r)
    pad = np.full((h, 8), 255, np.uint8)
    return [np.hstack([pad, src[:, a:b], pad]) for a, b in merged]


def _tesseract_batch(images: list[np.ndarray], lang: str, psm: int, whitelist: str | None,
                     binary: str) -> list[tuple[str, float]]:
    """Run ONE tesseract process over several line images (image-list input, TSV output).

    Returns (text, confidence 0..1) per image, in order. Empty images give ('', 0).
    """
    out: list[tuple[str, float]] = [("", 0.0)] * len(images)
    todo = [i for i, im in enumerate(images) if im.size and im.shape[1] > 0]
    if not todo:
        return out
    with tempfile.TemporaryDirectory(prefix="ssz-ocr-") as td:
        paths = []
        for i in todo:
            p = os.path.join(td, f"{i:05d}.png")
            cv2.imwrite(p, images[i])
            paths.append(p)
        lst = os.path.join(td, "list.txt")
        Path(lst).write_text("\n".join(paths) + "\n")
        cmd = [binary, lst, "stdout", "-l", lang, "--psm", str(psm), "-c", "tessedit_do_invert=0"]
        if whitelist:
            cmd += ["-c", f"tessedit_char_whitelist={whitelist}"]
        cmd.append("tsv")
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
        if -proc.returncode in CRASH_SIGNALS:  # died on one of the images (see _crashed)
            return _crashed(images, todo, lang, psm, whitelist, binary, proc.returncode)
        if proc.returncode != 0:
            raise OcrError(f"tesseract failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    words: dict[int, list[tuple[str, float]]] = {}
    for row in proc.stdout.splitlines()[1:]:
        f = row.split("\t")
        if len(f) < 12 or f[0] != "5":  # level 5 = word
            continue
        page = int(f[1]) - 1
        text, conf = f[11].strip(), float(f[10])
        if text:
            words.setdefault(page, []).append((text, max(0.0, conf) / 100.0))
    for page, i in enumerate(todo):
        ws = words.get(page, [])
        if ws:
            out[i] = ("".join(t for t, _ in ws), float(np.mean([c for _, c in ws])))
    return out


CRASH_SIGNALS = frozenset({signal.SIGFPE, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGABRT})
"""Signals by which tesseract dies of an image it cannot read (:func:`_crashed`); any other (a SIGKILL of the
out-of-memory killer, a SIGTERM at shutdown) is an :class:`OcrError`, not a batch to read again in halves."""


def _crashed(images: list[np.ndarray], todo: list[int], lang: str, psm: int, whitelist: str | None, binary: str,
             returncode: int) -> list[tuple[str, float]]:
    """The reads of a batch whose tesseract process died of a signal: tesseract 5.3 dies of a floating-point
    exception (SIGFPE) on some line images (a 101 x 68 crop of a dim IR street frame read with ``--psm 7``), which
    took every plate of the batch, and the whole photo, with it. The batch is read again in halves until the image
    that kills it is alone; that image reads as nothing (``('', 0)``), the others as they would alone."""
    out: list[tuple[str, float]] = [("", 0.0)] * len(images)
    if len(todo) == 1:
        log.warning("tesseract (%s, --psm %d) died of signal %d on a %s image: read as nothing", lang, psm,
                    -returncode, "x".join(map(str, images[todo[0]].shape[:2])))
        return out
    half = len(todo) // 2
    for part in (todo[:half], todo[half:]):
        for i, r in zip(part, _tesseract_batch([images[i] for i in part], lang, psm, whitelist, binary), strict=True):
            out[i] = r
    return out


class TesseractEngine(OcrEngine):
    """Tesseract 5 with the Thai model (``tha``): the offline default engine.

    ``reg_height``/``prov_height`` are the pixel heights line crops are upscaled to. Choices below were
    measured on rendered plates with ground-truth corners (clean/mild/moderate, 40-60 plates each):

    - letter group read glyph by glyph with ``--psm 13``: 258/269 glyphs right vs 256 (psm 8), 237 (psm 7,
      whole group), 236 (psm 10); 48 px beat 40 and 64;
    - number with ``eng``, digits only, ``--psm 13``: 119/120 vs 117/120 with ``--psm 7``, but each mode
      sometimes returns nothing where the other is right, so both run and the confident valid one wins;
    - province with ``--psm 7`` at 48 px: 115/120 after snapping vs 103-106 with psm 8/13;
    - first glyph of a multi-glyph group also read as a digit: a digit reading with confidence >= 0.8 is the
      category digit (tesseract otherwise reads 2 as อ or 1 as ร).
    """

    name = "tesseract"

    def __init__(self, reg_height: int = 48, prov_height: int = 48, binary: str | None = None,
                 lang: str = "tha", category_conf: float = 0.8) -> None:
        """Check that the tesseract binary and the Thai language data are installed (clear error if not)."""
        self.reg_height, self.prov_height, self.lang = reg_height, prov_height, lang
        self.category_conf = category_conf
        self.binary = binary or shutil.which("tesseract") or ""
        if not self.binary:
            raise OcrError("the tesseract binary is not installed: `apt-get install tesseract-ocr tesseract-ocr-tha`")
        langs = subprocess.run([self.binary, "--list-langs"], capture_output=True, text=True, check=False).stdout
        if lang not in langs.split():
            raise OcrError(f"tesseract has no '{lang}' language data: `apt-get install tesseract-ocr-{lang}`")
        self.digit_lang = "eng" if "eng" in langs.split() else lang
        self._pool = ThreadPoolExecutor(max_workers=5, thread_name_prefix="tesseract")

    def read(self, plates: list[np.ndarray]) -> list[PlateText]:
        """Read a batch: five tesseract processes (glyphs, first glyphs as digits, numbers ×2, provinces)."""
        if not plates:
            return []
        glyphs: list[np.ndarray] = []
        owner: list[int] = []
        firsts: list[np.ndarray] = []  # first glyph of each multi-glyph group, read again as a digit
        first_of: dict[int, int] = {}  # glyph index -> index in firsts
        numbers, provinces = [], []
        for k, rect in enumerate(plates):
            grey, binary = prepare_line(line_crop(rect, "registration"), self.reg_height)
            gb, _ = split_registration(binary)
            g, n = split_registration(binary, grey)
            gls = segment_glyphs(gb, g[:, : gb.shape[1]])
            if len(gls) >= 2:
                first_of[len(glyphs)] = len(firsts)
                firsts.append(gls[0])
            glyphs += gls
            owner += [k] * len(gls)
            numbers.append(n)
            provinces.append(prepare_line(line_crop(rect, "province"), self.prov_height)[0])
        f_glyphs = self._pool.submit(_tesseract_batch, glyphs, self.lang, 13, PLATE_CONSONANTS + DIGITS,
                                     self.binary)
        f_firsts = self._pool.submit(_tesseract_batch, firsts, self.digit_lang, 13, DIGITS, self.binary)
        f_numbers = self._pool.submit(_tesseract_batch, numbers, self.digit_lang, 13, DIGITS, self.binary)
        f_numbers7 = self._pool.submit(_tesseract_batch, numbers, self.digit_lang, 7, DIGITS, self.binary)
        f_prov = self._pool.submit(_tesseract_batch, provinces, self.lang, 7, None, self.binary)
        rg, rf, rp = f_glyphs.result(), f_firsts.result(), f_prov.result()
        # each page segmentation mode sometimes returns nothing for a number the other reads at 0.95: keep the
        # confident valid (1-4 digit) reading of the two
        rn = [max((a, b), key=lambda r: (1 <= len(r[0]) <= 4, r[1]))
              for a, b in zip(f_numbers.result(), f_numbers7.result(), strict=True)]
        group_text = [""] * len(plates)
        group_conf: list[list[float]] = [[] for _ in plates]
        for i, ((t, c), k, gl) in enumerate(zip(rg, owner, glyphs, strict=True)):
            if i in first_of:
                d, dc = rf[first_of[i]]
                if len(d) == 1 and dc >= self.category_conf:
                    t, c = d, dc
            if len(t) > 1 and gl.shape[1] - 16 < 1.1 * (gl.shape[0] - 20):
                t = t[0]  # one glyph wide: tesseract doubled a letter (e.g. ฎ -> ฎฏ); keep the first reading
            group_text[k] += t
            group_conf[k].append(c)
        out = []
        for k, ((nt, nc), (pt, pc)) in enumerate(zip(rn, rp, strict=True)):
            confs = [*group_conf[k], pc] + ([nc] if numbers[k].shape[1] else [])
            out.append(PlateText(registration=group_text[k] + nt, province=pt,
                                 confidence=float(np.mean(confs)) if confs else 0.0))
        return out


PADDLE_MODEL_KEY = "paddleocr/th_PP-OCRv5_mobile_rec"
"""Default folder of the PP-OCR Thai recognition model inside the ``models`` bucket / local model root."""


def _paddle_model_dir(model_dir: str | Path | None, store: Any | None, key: str, cache: Path) -> Path:
    """Find the PP-OCR model folder: a local folder if given, else download ``key/`` from the models bucket.

    Raises OcrError naming every place it looked when the model is in none of them.
    """
    looked: list[str] = []
    if model_dir is not None:
        p = Path(model_dir).expanduser()
        if p.is_dir() and any(p.iterdir()):
            return p
        looked.append(f"local folder {p} ({'empty' if p.is_dir() else 'missing'})")
    if store is not None:
        from twin.objectstore import MODELS_BUCKET

        prefix = key.strip("/") + "/"
        where = f"s3://{MODELS_BUCKET}/{prefix} on {store.settings.endpoint}"
        try:
            objs = [o for o in store.client.list_objects(MODELS_BUCKET, prefix=prefix, recursive=True)
                    if not o.is_dir]
        except Exception as e:  # the store is down or the bucket is absent: say where we looked
            looked.append(f"{where} (listing failed: {e})")
            objs = []
        else:
            if not objs:
                looked.append(f"{where} (no objects)")
        if objs:
            dest = cache / key
            for o in objs:
                target = dest / o.object_name[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists() or target.stat().st_size != o.size:
                    target.write_bytes(store.get_bytes(MODELS_BUCKET, o.object_name))
            return dest
    if model_dir is None and store is None:
        looked.append("nowhere: neither model_dir nor an object store was given")
    raise OcrError(
        "PP-OCR Thai recognition model not found; looked in: " + "; ".join(looked)
        + f". Put the exported model (inference.json/.pdmodel, inference.pdiparams, inference.yml) in a local "
        f"folder and give it (`ssz quality plates --paddle-model DIR`; in a service, PlateServiceConfig "
        f"engine_options model_dir), or upload it under s3://models/{key}/"
    )


class PaddleEngine(OcrEngine):
    """PaddleOCR (PP-OCR) Thai text recognition on the same per-line crops as the Tesseract engine.

    The model comes from ``model_dir`` or the object store's ``models`` bucket under ``model_key``;
    nothing is downloaded from the internet. Requires ``pip install .[paddle]`` (paddlepaddle + paddleocr 3).
    """

    name = "paddle"

    def __init__(self, model_dir: str | Path | None = None, store: Any | None = None,
                 model_key: str = PADDLE_MODEL_KEY, model_name: str = "th_PP-OCRv5_mobile_rec",
                 cache_dir: str | Path | None = None, device: str = "cpu", line_height: int = 48) -> None:
        """Locate the model (clear error naming where it looked), then import paddleocr lazily and load it."""
        cache = Path(cache_dir) if cache_dir else ssz_home() / "models"
        self.model_dir = _paddle_model_dir(model_dir, store, model_key, cache)
        try:
            from paddleocr import TextRecognition  # type: ignore[import-not-found]
        except ImportError as e:
            raise OcrError(
                f"PaddleOCR is not installed ({e}): `pip install .[paddle]` (paddlepaddle and paddleocr 3.x)"
            ) from e
        self.line_height = line_height
        self._model = TextRecognition(model_name=model_name, model_dir=str(self.model_dir), device=device)

    def _rec(self, images: list[np.ndarray]) -> list[tuple[str, float]]:
        res = self._model.predict(input=images, batch_size=max(1, len(images)))
        return [(str(r["rec_text"]), float(r["rec_score"])) for r in res]

    def read(self, plates: list[np.ndarray]) -> list[PlateText]:
        """Read a batch: one recogniser call for all registration lines, one for all province lines."""
        if not plates:
            return []

        def prep(c: np.ndarray) -> np.ndarray:
            s = self.line_height / c.shape[0]
            return cv2.resize(c, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)

        regs = self._rec([prep(line_crop(p, "registration")) for p in plates])
        provs = self._rec([prep(line_crop(p, "province")) for p in plates])
        return [PlateText(registration=r, province=p, confidence=(rc + pc) / 2)
                for (r, rc), (p, pc) in zip(regs, provs, strict=True)]


class LearnedEngine(OcrEngine):
    """The project's trained recogniser (:mod:`serve.plate.model`): every plate of a batch in one forward pass.

    ``weights``: a local file (default: the shipped ``serve/plate/data/plate_recogniser.pt``, SHA-256 checked);
    ``store``: an object store to fetch ``models/plate/plate_recogniser.pt`` from instead (checked against
    ``sha256``, the digest it must have, else against ``models/plate/plate_recogniser.sha256`` when the bucket holds
    it: :func:`~serve.plate.model.fetch_weights`); ``threads``: torch CPU threads (default: torch's choice);
    ``min_confidence``: override the threshold stored with the weights (0 to 1; ValueError otherwise).
    """

    name = "model"

    def __init__(self, weights: str | Path | None = None, store: Any | None = None, sha256: str | None = None,
                 threads: int | None = None, min_confidence: float | None = None) -> None:
        """Load and check the weights (ModelWeightsError naming the file and the rebuild command if unusable)."""
        from serve.plate.model import Recogniser, fetch_weights

        path = Path(weights) if weights else (fetch_weights(store) if store is not None else None)
        self._rec = Recogniser(path, expected_sha256=sha256, threads=threads)
        self.meta = self._rec.meta
        self.min_confidence = float(min_confidence if min_confidence is not None
                                    else self.meta.get("min_confidence", 0.5))
        if not 0.0 <= self.min_confidence <= 1.0:  # NaN too: every read would be dropped, below 0 none
            src = ("the min_confidence option" if min_confidence is not None
                   else f"the weights {path}" if path else "the shipped weights")
            raise ValueError(f"min_confidence {self.min_confidence} from {src} must be a number between 0 and 1 "
                             "(a read's confidence); leave it out to use the threshold stored with the weights")

    def read(self, plates: list[np.ndarray]) -> list[PlateText]:
        """Read a batch of rectified plates (any size, BGR or grey)."""
        out = []
        for r in self._rec.recognise(plates):
            out.append(PlateText(registration=r.text, province=r.line2, confidence=round(r.confidence, 4),
                                 char_confidences=[round(c, 4) for c in r.char_conf],
                                 vehicle=r.vehicle))  # type: ignore[arg-type]
        return out


OCR_ENGINE_REGISTRY: dict[str, Callable[..., OcrEngine]] = {
    "model": LearnedEngine,
    "tesseract": TesseractEngine,
    "paddle": PaddleEngine,
}
"""Engine name -> constructor; :func:`make_ocr_engine` builds from it (add an engine by adding an entry)."""
DEFAULT_ENGINE = "model"


def make_ocr_engine(name: str = DEFAULT_ENGINE, **options: Any) -> OcrEngine:
    """Build the engine registered as ``name``; ``options`` go to its constructor.

    Raises ValueError naming the known engines when ``name`` is not registered.
    """
    try:
        factory = OCR_ENGINE_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown OCR engine {name!r}: known engines are "
                         f"{', '.join(sorted(OCR_ENGINE_REGISTRY))}") from None
    return factory(**options)
