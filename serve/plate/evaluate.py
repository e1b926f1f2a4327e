"""Plate OCR quality per degradation level on rendered plates with ground truth.

For each level (clean, mild, moderate, severe) :func:`evaluate_plates` renders ``n`` plates (deterministic
seeds), reads them through :class:`~serve.plate.service.PlateService` and reports:

- ``exact``: whole-plate exact accuracy (category, letters, number and snapped province all right);
- ``registration_exact``: first line exactly right (what the hotlist matches on);
- ``char_accuracy``: per-character accuracy, 1 - (sum of edit distances) / (sum of truth lengths), over the
  registration (without spaces) and the province line (after snapping; an unread line counts all its
  characters wrong);
- ``confusions``: the most frequent (printed, read) letter substitutions, which justify the hotlist's
  look-alike pairs;
- with ``scenes=True`` also the same on full street scenes (localisation + OCR) and the found rate.

Run: ``python -m serve.plate.evaluate --n 50 --scenes --localisers --out plate-eval.json`` (prints markdown
tables; ``--localisers`` adds the contour vs Haar cascade comparison on rendered scenes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from serve.plate.distance import levenshtein
from serve.plate.parse import Plate
from serve.plate.render import LEVELS, render_plate, render_scene
from serve.plate.service import PlateRead, PlateService


def _score(truth: Plate, read: PlateRead | None) -> tuple[bool, bool, int, int]:
    """(exact, registration exact, character errors, characters) of one read against the truth."""
    t_reg, t_prov = truth.key, truth.province or ""
    if read is None:
        return False, False, len(t_reg) + len(t_prov), len(t_reg) + len(t_prov)
    p = read.plate
    if p is not None:
        r_reg, r_prov = p.key, p.province or ""
    else:
        reg_line = read.text.split("\n", 1)[0]
        r_reg, r_prov = "".join(reg_line.split()), ""
    errs = levenshtein(r_reg, t_reg) + levenshtein(r_prov, t_prov)
    return p == truth, p is not None and p.key == truth.key, errs, len(t_reg) + len(t_prov)


def _confusions(pairs: list[tuple[Plate, PlateRead | None]]) -> list[tuple[str, str, int]]:
    """(printed, read, count) of character substitutions in same-length registration reads, most first."""
    from collections import Counter

    c: Counter[tuple[str, str]] = Counter()
    for truth, rd in pairs:
        if rd is None or rd.plate is None or len(rd.plate.key) != len(truth.key):
            continue
        c.update((a, b) for a, b in zip(truth.key, rd.plate.key, strict=True) if a != b)
    return [(a, b, n) for (a, b), n in c.most_common(15)]


def _summary(rows: list[tuple[bool, bool, int, int]], seconds: float) -> dict[str, Any]:
    n = len(rows)
    errs, chars = sum(r[2] for r in rows), sum(r[3] for r in rows)
    return {"n": n, "exact": round(sum(r[0] for r in rows) / n, 4),
            "registration_exact": round(sum(r[1] for r in rows) / n, 4),
            "char_accuracy": round(max(0.0, 1 - errs / chars), 4), "seconds_per_plate": round(seconds / n, 4)}


def evaluate_plates(n: int = 50, levels: tuple[str, ...] = LEVELS, seed: int = 10_000, scenes: bool = False,
                    service: PlateService | None = None, batch: int = 16) -> dict[str, Any]:
    """Accuracy per level on ``n`` rendered plate crops (and scenes with ``scenes``); a JSON-able dict."""
    svc = service or PlateService()
    out: dict[str, Any] = {"engine": svc.engine.name, "localiser": svc.localiser.name, "n": n, "seed": seed,
                           "crops": {}, "scenes": {}}
    for level in levels:
        rendered = [render_plate(seed + i, level) for i in range(n)]
        t0 = time.perf_counter()
        reads: list[PlateRead | None] = []
        for i in range(0, n, batch):
            reads += svc.read_crops([r.image for r in rendered[i: i + batch]])
        out["crops"][level] = _summary([_score(r.plate, rd) for r, rd in zip(rendered, reads, strict=True)],
                                       time.perf_counter() - t0)
        out["crops"][level]["confusions"] = _confusions([(r.plate, rd) for r, rd in zip(rendered, reads, strict=True)])
        if scenes:
            sc = [render_scene(seed + i, level) for i in range(n)]
            t0 = time.perf_counter()
            found = 0
            rows = []
            for i in range(0, n, batch):
                chunk = sc[i: i + batch]
                for s, rr in zip(chunk, svc.read([s.image for s in chunk]), strict=True):
                    best = next((r for r in rr if r.plate == s.plate), None) or (rr[0] if rr else None)
                    found += any(_iou(r.box, s.box) > 0.5 for r in rr)
                    rows.append(_score(s.plate, best))
            summ = _summary(rows, time.perf_counter() - t0)
            summ["found"] = round(found / n, 4)
            out["scenes"][level] = summ
    return out


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def compare_localisers(n: int = 30, levels: tuple[str, ...] = LEVELS, seed: int = 20_000) -> dict[str, Any]:
    """Found rate (IoU > 0.6 with the true plate box) and false candidates per frame of each localiser."""
    from serve.plate.localise import make_localiser

    out: dict[str, Any] = {}
    scenes = {lv: [render_scene(seed + i, lv) for i in range(n)] for lv in levels}
    for name in ("contour", "cascade"):
        loc = make_localiser(name)
        out[name] = {}
        for lv, scs in scenes.items():
            found = false = 0
            t0 = time.perf_counter()
            for s in scs:
                cands = loc.locate(s.image)
                hit = [c for c in cands if _iou(c.box, s.box) > 0.6]
                found += bool(hit)
                false += len(cands) - len(hit)
            out[name][lv] = {"found": round(found / n, 3), "false_per_frame": round(false / n, 2),
                             "seconds_per_frame": round((time.perf_counter() - t0) / n, 4)}
    return out


def markdown_table(result: dict[str, Any]) -> str:
    """The evaluation as a markdown table (one row per input kind and level)."""
    lines = [f"Plate OCR on rendered Thai plates (engine {result['engine']}, localiser {result['localiser']}, "
             f"n={result['n']} per level, seed {result['seed']})", "",
             "| input | level | exact plate | exact registration | char accuracy | found | s/plate |",
             "|---|---|---|---|---|---|---|"]
    for kind in ("crops", "scenes"):
        for level, r in result[kind].items():
            found = f"{r['found']:.0%}" if "found" in r else "-"
            lines.append(f"| {kind} | {level} | {r['exact']:.0%} | {r['registration_exact']:.0%} | "
                         f"{r['char_accuracy']:.1%} | {found} | {r['seconds_per_plate']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """CLI: evaluate, write JSON (``--out``) and print the markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=10_000)
    ap.add_argument("--scenes", action="store_true")
    ap.add_argument("--localisers", action="store_true", help="also compare the contour and cascade localisers")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    res = evaluate_plates(n=a.n, seed=a.seed, scenes=a.scenes)
    res["markdown"] = markdown_table(res)
    if a.localisers:
        res["localisers"] = compare_localisers(n=a.n)
        rows = ["", "| localiser | level | found | false/frame | s/frame |", "|---|---|---|---|---|"]
        for name, per in res["localisers"].items():
            rows += [f"| {name} | {lv} | {r['found']:.0%} | {r['false_per_frame']} | {r['seconds_per_frame']} |"
                     for lv, r in per.items()]
        res["markdown"] += "\n" + "\n".join(rows)
    if a.out:
        a.out.write_text(json.dumps(res, ensure_ascii=False, indent=1))
    print(res["markdown"])


if __name__ == "__main__":
    main()
