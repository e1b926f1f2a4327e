"""Plate reading quality per engine, plate type and degradation level, on held-out renders or real photos.

:func:`evaluate_plates` renders ``n`` plates per level (deterministic seeds) with the **held-out** font families
and backgrounds (:mod:`serve.plate.fonts`, :mod:`serve.plate.backgrounds`: never seen in training; or the
validation families, ``fonts="validation"``, on training backgrounds), reads them
with each engine through :class:`~serve.plate.service.PlateService` (the real service path: candidates,
rectification, verification) and reports, per engine, level and plate type:

- ``exact``: whole plate right (registration and second line: province or region);
- ``registration_exact``: registration right (what the hotlist matches on);
- ``province_exact``: second line right (over the plates whose label gives one; None when none does);
- ``char_accuracy``: 1 - (sum of edit distances) / (sum of truth lengths) over registration and second line
  (an unread plate counts all its characters wrong; a label without a second line scores the registration only);
- ``confusions``: the most frequent (printed, read) registration character substitutions;
- with ``scenes=True`` the same on whole street scenes (localisation included) and the found rate; with
  ``scene_scale`` below 1 the 640 x 480 scenes are shrunk first (a lower-resolution camera, or a camera's crop of one
  vehicle: the plates are that much smaller, the frames too).

:func:`evaluate_images` scores any folder of real, labelled photos (``--images DIR --labels CSV``), so a police
team can check the reader on its own cameras.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from serve.plate.backgrounds import background_split
from serve.plate.distance import levenshtein
from serve.plate.fonts import FontSplit, families
from serve.plate.localise import _box, _iou
from serve.plate.parse import Plate, PlateParseError
from serve.plate.render import LEVELS, RenderedScene, render_plate, render_scene
from serve.plate.service import (
    PlateRead,
    PlateService,
    PlateServiceConfig,
    decode_image,
)

DEFAULT_ENGINES = ("model", "tesseract")
MIN_SCENE_SCALE = 0.05
"""Least ``scene_scale`` of :func:`evaluate_plates`: the 640 x 480 scenes shrunk to 32 x 24 px."""


def score(truth: Plate, read: PlateRead | None) -> tuple[bool, bool, bool | None, int, int]:
    """(whole exact, registration exact, second line exact, character errors, characters) of one read.

    A ``truth`` without a second line (a label giving the registration only) scores the registration only: the
    second line is None (not scored), whole exact is the registration, and the read's second line is no error.
    """
    t_reg, t_l2 = truth.key, truth.line2 or ""
    labelled_l2 = truth.line2 is not None
    n = len(t_reg) + len(t_l2)
    if read is None:
        return False, False, False if labelled_l2 else None, n, n
    p = read.plate
    if p is not None:
        r_reg, r_l2 = p.key, p.line2 or ""
    else:
        reg_line = read.text.split("\n", 1)[0]
        r_reg, r_l2 = "".join(c for c in reg_line if not c.isspace() and c != "-"), ""
    reg_ok = r_reg == t_reg
    if not labelled_l2:
        return reg_ok, reg_ok, None, levenshtein(r_reg, t_reg), n
    l2_ok = r_l2 == t_l2
    return reg_ok and l2_ok, reg_ok, l2_ok, levenshtein(r_reg, t_reg) + levenshtein(r_l2, t_l2), n


def _confusions(pairs: list[tuple[Plate, PlateRead | None]]) -> list[tuple[str, str, int]]:
    """(printed, read, count) of character substitutions in same-length registration reads, most first."""
    c: Counter[tuple[str, str]] = Counter()
    for truth, rd in pairs:
        if rd is None or rd.plate is None or len(rd.plate.key) != len(truth.key):
            continue
        c.update((a, b) for a, b in zip(truth.key, rd.plate.key, strict=True) if a != b)
    return [(a, b, k) for (a, b), k in c.most_common(10)]


def summarise(rows: list[tuple[bool, bool, bool | None, int, int]], seconds: float = 0.0) -> dict[str, Any]:
    """Rates over scored rows (see :func:`score`); ``province_exact`` over the rows whose second line is scored
    (None when none is)."""
    n = len(rows)
    if not n:
        return {"n": 0}
    errs, chars = sum(r[3] for r in rows), sum(r[4] for r in rows)
    l2 = [r[2] for r in rows if r[2] is not None]
    return {"n": n, "exact": round(sum(r[0] for r in rows) / n, 4),
            "registration_exact": round(sum(r[1] for r in rows) / n, 4),
            "province_exact": round(sum(l2) / len(l2), 4) if l2 else None,
            "char_accuracy": round(max(0.0, 1 - errs / max(1, chars)), 4),
            "seconds_per_plate": round(seconds / n, 4)}


def _best(reads: list[PlateRead], truth: Plate) -> PlateRead | None:
    """The read of ``truth`` among a frame's reads: an exact one, else the closest registration, else None."""
    if not reads:
        return None
    return min(reads, key=lambda r: levenshtein(r.plate.key if r.plate else "", truth.key))


def _service(engine: str) -> PlateService:
    return PlateService(PlateServiceConfig(engine=engine))


def evaluate_plates(n: int = 100, levels: tuple[str, ...] = LEVELS, seed: int = 10_000, scenes: bool = False,
                    engines: tuple[str, ...] = DEFAULT_ENGINES, fonts: FontSplit = "heldout", batch: int = 16,
                    services: dict[str, PlateService] | None = None, scene_scale: float = 1.0) -> dict[str, Any]:
    """Accuracy per engine, level and plate type on ``n`` rendered crops per level (and scenes); JSON-able.

    ``scene_scale`` (0.05 <= scale <= 1): the 640 x 480 scenes are shrunk by it (area filter) before they are read,
    and their true boxes with them (0.3: 192 x 144 frames, plates of about 25-60 px). ValueError outside that range."""
    if not MIN_SCENE_SCALE <= scene_scale <= 1:
        raise ValueError(f"scene_scale {scene_scale}: scenes are shrunk by a factor from {MIN_SCENE_SCALE} (32 x 24 "
                         "frames) to 1 (0.5 reads 320 x 240 frames)")
    out: dict[str, Any] = {"n": n, "seed": seed, "fonts": fonts, "font_families": list(families(fonts)),
                           "backgrounds": background_split(fonts), "levels": list(levels), "engines": {}}
    crops = {lv: [render_plate(seed + i, lv, fonts=fonts) for i in range(n)] for lv in levels}
    scs = {lv: [shrunk_scene(render_scene(seed + i, lv, fonts=fonts), scene_scale) for i in range(n)]
           for lv in levels} if scenes else {}
    if scenes:
        out["scene_size"] = list(scs[levels[0]][0].image.shape[1::-1]) if levels and n else None
    for name in engines:
        svc = (services or {}).get(name) or _service(name)
        res: dict[str, Any] = {"crops": {}, "scenes": {}, "localiser": svc.localiser.name}
        for lv in levels:
            rendered = crops[lv]
            t0 = time.perf_counter()
            reads: list[PlateRead | None] = []
            for i in range(0, n, batch):
                reads += svc.read_crops([r.image for r in rendered[i: i + batch]])
            secs = time.perf_counter() - t0
            rows = [score(r.plate, rd) for r, rd in zip(rendered, reads, strict=True)]
            summ = summarise(rows, secs)
            by_type: dict[str, list[tuple[bool, bool, bool | None, int, int]]] = {}
            for r, row in zip(rendered, rows, strict=True):
                by_type.setdefault(r.style, []).append(row)
            summ["per_type"] = {t: summarise(v) for t, v in sorted(by_type.items())}
            summ["confusions"] = _confusions([(r.plate, rd) for r, rd in zip(rendered, reads, strict=True)])
            res["crops"][lv] = summ
            if scenes:
                t0 = time.perf_counter()
                found = 0
                srows = []
                for i in range(0, n, batch):
                    chunk = scs[lv][i: i + batch]
                    for s, rr in zip(chunk, svc.read([s.image for s in chunk]), strict=True):
                        found += any(_iou(r.box, s.box) > 0.5 for r in rr)
                        srows.append(score(s.plate, _best(rr, s.plate)))
                ssum = summarise(srows, time.perf_counter() - t0)
                ssum["found"] = round(found / n, 4)
                res["scenes"][lv] = ssum
        out["engines"][name] = res
    return out


def shrunk_scene(scene: RenderedScene, scale: float) -> RenderedScene:
    """``scene`` shrunk by ``scale`` (0 < scale <= 1; area filter, the size rounded), its plate's quad with it (per
    axis) and its box that quad's (as :func:`~serve.plate.render.render_scene` makes it); itself at 1."""
    if scale == 1:
        return scene
    h, w = scene.image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    quad = (scene.quad * np.float32([size[0] / w, size[1] / h])).astype(np.float32)
    return dataclasses.replace(scene, image=cv2.resize(scene.image, size, interpolation=cv2.INTER_AREA), quad=quad,
                               box=_box(quad))



class LabelsError(ValueError):
    """The labels CSV or the image folder is unusable; the message says what is wrong and what is expected."""


LABEL_COLUMNS: dict[str, tuple[str, ...]] = {
    "file": ("file", "filename", "ไฟล์", "ชื่อไฟล์"),
    "plate": ("plate", "ทะเบียน", "ป้ายทะเบียน"),
    "registration": ("registration", "เลขทะเบียน"),
    "province": ("province", "จังหวัด"),
}
"""Accepted headers of a labels file (matched as :func:`twin.fieldtext.header_key` reduces them), per column."""
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff",
                            ".heic", ".heif", ".avif"})
"""File endings counted as photos when the folder is checked for photos the labels do not name (``.jfif``: the ending
Windows gives JPEGs saved from a browser)."""


def read_labels(labels: Path) -> list[tuple[str, Plate]]:
    """(file name, plate) rows of a labels CSV or ``.xlsx`` workbook.

    Columns: ``file`` and either ``plate`` (e.g. ``กข 1234 กรุงเทพมหานคร`` or two lines) or ``registration`` with an
    optional ``province`` (Thai headers ไฟล์, ทะเบียน, เลขทะเบียน, จังหวัด too; case, spaces and dashes ignored).
    Read by the field-input reader (:func:`twin.fieldfiles.load_raw`): UTF-8 (with or without BOM), UTF-16 or the
    Thai Windows encodings (cp874 / TIS-620), a sniffed delimiter (``, ; tab |``), blank rows skipped. Raises
    LabelsError naming the row that does not parse, or a photo labelled twice.
    """
    from twin.fieldfiles import WORKBOOK_FORMATS, load_raw
    from twin.fieldspecs import InputError
    from twin.fieldtext import header_key, normalize_text

    if labels.is_dir():
        raise LabelsError(f"labels {labels} is a folder: give the CSV file with columns file,plate "
                          "(or file,registration,province)")
    if not labels.is_file():
        raise LabelsError(f"labels file {labels} does not exist: give a CSV with columns file,plate "
                          "(or file,registration,province)")
    try:
        raw = load_raw(labels)
    except InputError as e:
        raise LabelsError(str(e)) from e
    keys = {header_key(alias): col for col, aliases in LABEL_COLUMNS.items() for alias in aliases}
    found: dict[str, str] = {}
    for header in raw.frame.columns:
        col = keys.get(header_key(str(header)))
        if col is not None:
            found.setdefault(col, header)
    if "file" not in found or not ({"plate", "registration"} & set(found)):
        raise LabelsError(f"{labels} has columns {list(raw.frame.columns)}: expected file and plate (or file, "
                          "registration and optionally province) as the first row (the header), then one row per "
                          "photo, e.g. 'file,plate' then 'cam1.jpg,กข 1234 กรุงเทพมหานคร'")
    if raw.frame.empty:
        raise LabelsError(f"{labels} has no rows: expected a header file,plate and one row per photo")

    def cell(r: Any, col: str) -> str:  # a file name keeps its own characters (Thai digits included)
        v = r[found[col]] if col in found else None
        if v is None or (isinstance(v, float) and v != v):
            return ""
        return str(v).strip() if col == "file" else normalize_text(str(v))

    from serve.plate.hotlist import HotlistError, _parse_entry_text

    out, first_line = [], {}
    for k, (_, r) in enumerate(raw.frame.iterrows()):
        where = (f"line {raw.lines[k]}" if raw.lines else f"Excel row {raw.sheet_rows[k]}" if raw.sheet_rows
                 else f"row {raw.header_row + k + 1}")
        name = cell(r, "file")
        if not name:
            raise LabelsError(f"{labels} {where}: no file name: name the photo (relative to the image folder) "
                              "in the file column, or delete the row")
        if name in first_line:
            raise LabelsError(f"{labels} {where}: {name} is labelled twice (also {first_line[name]}): keep one "
                              "row per photo")
        first_line[name] = where
        text = cell(r, "plate") if "plate" in found else f"{cell(r, 'registration')}\n{cell(r, 'province')}".strip()
        if not text:
            raise LabelsError(f"{labels} {where}: {name} has no plate: write its plate (e.g. กข 1234 "
                              "กรุงเทพมหานคร) or delete the row")
        try:
            plate = _parse_entry_text(text)
        except (HotlistError, PlateParseError, ValueError) as e:
            hint = (f" (the file was read as {raw.encoding} text, as its few non-ASCII bytes suggest: if it holds "
                    "Thai, save it from Excel as 'CSV UTF-8 (comma delimited)')"
                    if raw.encoding not in (*WORKBOOK_FORMATS, "cp874") and not raw.encoding.startswith("utf")
                    else "")
            raise LabelsError(f"{labels} {where}: {e}{hint}") from e
        out.append((name, plate))
    return out


def unlabelled_photos(images: Path, labelled: list[str]) -> list[str]:
    """Photos in the folder ``images`` (any depth; see :data:`PHOTO_SUFFIXES`) that no row of the labels names,
    as paths relative to the folder, sorted."""
    named = {(images / f).resolve() for f in labelled}
    return sorted(p.relative_to(images).as_posix() for p in images.rglob("*")
                  if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES and p.resolve() not in named)


def list_names(names: list[str], shown: int = 10) -> str:
    """The first ``shown`` of ``names`` joined by commas, then " and N more" for the rest (messages and reports)."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"{', '.join(names[:shown])}{more}"


def photo_paths(images: Path, names: list[str]) -> dict[str, Path]:
    """The photo file each labelled name in ``names`` points to in the folder ``images``: the name as written; else,
    for labels written on Windows, with its backslashes read as folder separators (``cam 1\\IMG_0001.JPG``); else
    the one file whose path differs only in letter case (Windows and macOS ignore it, so a label typed there as
    ``img_0001.jpg`` names ``IMG_0001.JPG``); a name that starts with the folder's own name (``photos/a.jpg`` for
    ``--images photos``: labels written from the folder above) is read without it. Names that point to no file are
    left out."""
    by_lower: dict[str, list[Path]] | None = None
    out: dict[str, Path] = {}
    for name in names:
        slashed = name.replace("\\", "/")
        head, _, rest = slashed.partition("/")
        cands = (name, slashed) + ((rest,) if rest and head == images.resolve().name else ())
        for cand in dict.fromkeys(cands):
            if (images / cand).is_file():
                out[name] = images / cand
                break
        else:
            if by_lower is None:
                by_lower = {}
                for p in images.rglob("*"):
                    if p.is_file():
                        by_lower.setdefault(p.relative_to(images).as_posix().lower(), []).append(p)
            same = by_lower.get(name.replace("\\", "/").lower(), [])
            if len(same) == 1:
                out[name] = same[0]
    return out


def _outside(images: Path, name: str) -> bool:
    """Whether the labelled ``name`` points outside the folder ``images`` (``../x``, an absolute path)."""
    return not (images / name).resolve().is_relative_to(images.resolve())


def _photos_bar(items: list[Any], desc: str, progress: bool) -> Any:
    """``items`` wrapped in a progress bar on stderr (a folder of hundreds of phone photos takes minutes)."""
    import sys

    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="photo", file=sys.stderr, disable=not progress, dynamic_ncols=True)


def _read_photo(svc: PlateService, path: Path) -> list[PlateRead] | Exception:
    """The plates ``svc`` reads in the photo file ``path`` (:meth:`~serve.plate.service.PlateService.read_photos`: a
    photo lying on its side is read turned), or the exception that stopped it: an empty, corrupt or oversized file
    gives the PlateInputError of :func:`~serve.plate.service.decode_image`, and any other failure of one photo is
    returned too (one bad photo is a miss or a row to fill in, never the end of an evaluation or a draft)."""
    try:
        got = svc.read_photos([decode_image(path.read_bytes(), svc.config.max_pixels)])[0]
    except Exception as e:
        return e
    return got


def evaluate_images(images: Path, labels: Path, engines: tuple[str, ...] = DEFAULT_ENGINES,
                    services: dict[str, PlateService] | None = None, progress: bool = False) -> dict[str, Any]:
    """Score each engine on a folder of real photos labelled in ``labels`` (see :func:`read_labels`).

    A photo that cannot be read, or that makes the service raise, counts as a miss and is listed under
    ``errors`` (the evaluation never stops on one bad photo); photos in the folder that no row names are listed
    under ``unlabelled`` (not scored); ``progress``: a bar per engine on stderr. Raises LabelsError for a bad
    labels file or a labelled photo that is missing.
    """
    if images.is_file():
        raise LabelsError(f"--images {images} is a file, expected a folder of photos (named in the labels CSV)")
    if not images.is_dir():
        raise LabelsError(f"image folder {images} does not exist")
    rows = read_labels(labels)
    paths = photo_paths(images, [f for f, _ in rows])
    outside = [f for f, _ in rows if _outside(images, f)
               or (f in paths and not paths[f].resolve().is_relative_to(images.resolve()))]
    if outside:
        raise LabelsError(f"{len(outside)} labelled file(s) are outside {images}: {', '.join(outside[:5])}; name "
                          "each photo relative to the image folder (no '..', no absolute path)")
    missing = [f for f, _ in rows if f not in paths]
    if missing:
        raise LabelsError(f"{len(missing)} labelled file(s) are not in {images}: {', '.join(missing[:5])}: copy "
                          f"the photo(s) into the folder, or delete their rows from {labels}")
    named: dict[Path, str] = {}
    for f, _ in rows:  # two spellings of one photo ('./a.jpg' and 'a.jpg', 'cam\\a.jpg' and 'cam/a.jpg')
        first = named.setdefault(paths[f].resolve(), f)
        if first != f:
            raise LabelsError(f"{labels}: {f} and {first} are the same photo, labelled twice: keep one row per photo")
    rel = [paths[f].resolve().relative_to(images.resolve()).as_posix() for f, _ in rows]
    out: dict[str, Any] = {"images": str(images), "labels": str(labels), "n": len(rows),
                           "unlabelled": unlabelled_photos(images, rel), "engines": {}}
    for name in engines:
        svc = (services or {}).get(name) or _service(name)
        scored, per_photo, errors = [], [], []
        t0 = time.perf_counter()
        for f, truth in _photos_bar(rows, f"{name} engine", progress):
            got = _read_photo(svc, paths[f])
            if isinstance(got, Exception):  # one bad photo is a miss, not the end of the evaluation
                errors.append({"file": f, "error": f"{type(got).__name__}: {got}"})
            reads = [] if isinstance(got, Exception) else got
            best = _best(reads, truth)
            s = score(truth, best)
            scored.append(s)
            per_photo.append({"file": f, "truth": truth.text, "read": best.plate.text if best and best.plate else
                              (best.text if best else None), "exact": s[0], "registration_exact": s[1],
                              "plates_found": len(reads)})
        res = summarise(scored, time.perf_counter() - t0)
        res["errors"] = errors
        res["photos"] = per_photo
        out["engines"][name] = res
    return out


WORKBOOK_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".ods"})
"""File endings :func:`twin.fieldfiles.load_raw` reads as workbooks, which a draft (CSV) must not be named."""
DRAFT_COLUMNS = ("file", "plate", "confidence", "read", "check")
"""Columns of a draft labels file (:func:`draft_labels`); :func:`read_labels` reads ``file`` and ``plate`` and
ignores the rest."""


def draft_labels(images: Path, out: Path, service: PlateService | None = None, progress: bool = False
                 ) -> dict[str, Any]:
    """Read every photo in the folder ``images`` (any depth, :data:`PHOTO_SUFFIXES`) and write a draft labels file
    ``out`` (UTF-8 with a BOM, so Excel on Thai Windows shows the Thai) with the columns :data:`DRAFT_COLUMNS`:
    each photo's most confident plate in one line (``กข 1234 กรุงเทพมหานคร``), its confidence, every plate read
    and what to check. A photo with no plate, or that cannot be read, gets an empty plate, which
    :func:`read_labels` refuses until someone writes it or deletes the row: the draft is to be checked against the
    photos, never scored as it is (that would score the reader against itself). Returns counts and the path.

    Raises LabelsError when ``images`` is not a folder or holds no photo, when ``out`` exists (a checked labels
    file is never overwritten), when ``out`` would be a photo in ``images`` (a photo's file ending) or a workbook
    (``.xlsx``: the draft is CSV), or when ``out`` cannot be created (checked before any photo is read; a draft
    cut short leaves no file behind).
    """
    import csv

    if not images.is_dir():
        raise LabelsError(f"--images {images} is not a folder of photos")
    exists = (f"{out} exists: give --draft-labels a new file name (a labels file already checked by hand is never "
              "overwritten), or delete it")
    if out.exists():
        raise LabelsError(exists)
    if out.resolve().is_relative_to(images.resolve()) and out.suffix.lower() in PHOTO_SUFFIXES:
        raise LabelsError(f"--draft-labels {out} would be a photo in {images}: give a .csv file name")
    if out.suffix.lower() in WORKBOOK_SUFFIXES:
        raise LabelsError(f"--draft-labels {out}: the draft is a CSV file, not a {out.suffix} workbook: give a .csv "
                          "file name (Excel opens it; --labels reads it back as CSV or as .xlsx saved from Excel)")
    photos = unlabelled_photos(images, [])
    if not photos:
        raise LabelsError(f"{images} holds no photo ({', '.join(sorted(PHOTO_SUFFIXES))}, any depth)")
    svc = service or _service("model")
    try:  # created now, not after minutes of reading: an unwritable place is said before a photo is read
        out.parent.mkdir(parents=True, exist_ok=True)
        fh = out.open("x", encoding="utf-8-sig", newline="")
    except FileExistsError:  # created meanwhile, or a file where a folder of the path should be
        raise LabelsError(exists if out.exists() else f"cannot write --draft-labels {out}: a folder of its path "
                          "is a file: give a file in a folder") from None
    except OSError as e:
        raise LabelsError(f"cannot write --draft-labels {out} ({e.strerror or e}): give a file in a folder you "
                          "can write to") from e
    try:
        rows, found = _draft_rows(images, photos, svc, progress)
        with fh:
            w = csv.writer(fh)
            w.writerow(DRAFT_COLUMNS)
            w.writerows(rows)
    except BaseException as e:  # Ctrl-C, a full disk: no half-written draft left to be mistaken for a whole one
        fh.close()
        out.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise LabelsError(f"cannot write --draft-labels {out} ({e.strerror or e}): free some space or give "
                              "another folder") from e
        raise
    return {"images": str(images), "draft_labels": str(out), "photos": len(photos), "with_plate": found,
            "to_fill_in": len(photos) - found}


def _draft_rows(images: Path, photos: list[str], svc: PlateService, progress: bool
                ) -> tuple[list[tuple[str, str, str, str, str]], int]:
    """The rows of :func:`draft_labels` (one per photo, :data:`DRAFT_COLUMNS`) and how many have a plate."""
    rows, found = [], 0
    for f in _photos_bar(photos, "reading", progress):
        got = _read_photo(svc, images / f)
        if isinstance(got, Exception):
            rows.append((f, "", "", "", f"not readable ({type(got).__name__}: {got}): fix or delete the row"))
            continue
        parsed = sorted((r for r in got if r.plate is not None), key=lambda r: -r.confidence)
        if not parsed:
            rows.append((f, "", "", "", "no plate read: write the plate, or delete the row"))
            continue
        found += 1
        one_line = [r.plate.text.replace("\n", " ") for r in parsed]
        rows.append((f, one_line[0], f"{parsed[0].confidence:.3f}", " | ".join(one_line),
                     "check against the photo" + (f"; {len(parsed)} plates read, keep the one to score"
                                                  if len(parsed) > 1 else "")))
    return rows, found


def markdown_table(result: dict[str, Any]) -> str:
    """The rendered-set evaluation as a markdown table: one row per engine, input, level and plate type."""
    size = result.get("scene_size")
    lines = [f"Plate reading on rendered Thai plates ({result['fonts']} fonts, "
             f"{result['backgrounds']} backgrounds, n={result['n']} "
             f"per level, seed {result['seed']}{f'; scenes {size[0]} x {size[1]}' if size else ''})", "",
             "| engine | input | level | type | n | whole plate | registration | province | char accuracy | "
             "found | s/plate |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines[1:1] = _weights_lines(result)
    for eng, res in result["engines"].items():
        for kind in ("crops", "scenes"):
            for level, r in res[kind].items():
                rows = [("all", r), *r.get("per_type", {}).items()]
                for t, v in rows:
                    if not v.get("n"):
                        continue
                    found = f"{r['found']:.0%}" if "found" in r and t == "all" else "-"
                    secs = f"{r['seconds_per_plate']:.4f}" if t == "all" else "-"
                    lines.append(f"| {eng} | {kind} | {level} | {t} | {v['n']} | {v['exact']:.1%} | "
                                 f"{v['registration_exact']:.1%} | {v['province_exact']:.1%} | "
                                 f"{v['char_accuracy']:.1%} | {found} | {secs} |")
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    """``text`` as one markdown table cell: its lines joined by spaces, a '|' (legal in a file name) escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _pct(v: float | None) -> str:
    """A rate as a percentage for a table, '-' when it was not measured (None)."""
    return "-" if v is None else f"{v:.1%}"


def _weights_lines(result: dict[str, Any]) -> list[str]:
    """The report's line naming the model engine's weights (``result["model_weights"]``: file, SHA-256), if any."""
    w = result.get("model_weights")
    return [f"\nmodel engine weights: {w['file']} (SHA-256 {w['sha256'][:16]}...)"] if w else []


def images_markdown_table(result: dict[str, Any]) -> str:
    """The evaluation of :func:`evaluate_images` as markdown: one summary row per engine, then one row per photo
    with the label and each engine's read ("-" when it found no plate, "error" when the photo could not be read)."""
    engines = list(result["engines"])
    lines = [f"Plate reading on {result['n']} labelled photos in {result['images']} (labels {result['labels']})", "",
             "| engine | n | whole plate | registration | province | char accuracy | errors | s/photo |",
             "|---|---|---|---|---|---|---|---|"]
    lines[1:1] = _weights_lines(result)
    for eng, r in result["engines"].items():
        if not r.get("n"):
            continue
        lines.append(f"| {eng} | {r['n']} | {r['exact']:.1%} | {r['registration_exact']:.1%} | "
                     f"{_pct(r['province_exact'])} | {r['char_accuracy']:.1%} | {len(r.get('errors', []))} | "
                     f"{r['seconds_per_plate']:.3f} |")
    lines += ["", "| photo | label | " + " | ".join(engines) + " |", "|---|---|" + "---|" * len(engines)]
    per = {eng: {p["file"]: p for p in r.get("photos", [])} for eng, r in result["engines"].items()}
    failed = {eng: {e["file"] for e in r.get("errors", [])} for eng, r in result["engines"].items()}

    def cell(eng: str, f: str) -> str:
        p = per[eng].get(f)
        if f in failed[eng]:
            return "error"
        if p is None or p["read"] is None:
            return "-"
        read = _md_cell(str(p["read"]))
        return f"{read} ✓" if p["exact"] else read

    files = list(dict.fromkeys(f for eng in engines for f in per[eng]))
    for f in files:
        truth = next(per[eng][f]["truth"] for eng in engines if f in per[eng])
        lines.append(f"| {_md_cell(f)} | {_md_cell(str(truth))} | " + " | ".join(cell(e, f) for e in engines) + " |")
    unlabelled = result.get("unlabelled", [])
    if unlabelled:
        lines += ["", f"Not scored: {len(unlabelled)} photo(s) in the folder have no label: "
                      f"{list_names(unlabelled)}."]
    return "\n".join(lines)

