"""Verification quality of the face engines on a labelled set, and how to choose and re-calibrate thresholds.

:func:`evaluate_faces` embeds every photo of a labelled folder (``identities.csv``: ``file,identity_id``; the
default is ``../shared/data/faces_deepface``, 13 people, 61 photos, so 1,830 pairs: 140 genuine, 1,690 impostor)
with each available engine, forms every pair, and reports per engine:

- the ROC: FAR (impostor pairs accepted) and TAR (genuine pairs accepted) over all distance thresholds;
- TAR at FAR 1% and 0.1%, the EER, and the thresholds that achieve them;
- a recommended threshold: the largest distance with FAR <= ``target_far`` (0.1% by default), because a
  watchlist search compares each face against every enrolled person, so per-pair false accepts multiply by the
  watchlist size and by the number of faces seen per day.

It writes ``face_eval.json`` and ``face_eval.png`` (ROC + distance histograms). Photos in which MTCNN finds no
face count as failures to enrol and are left out of the pairs (reported as ``failed``).

Caveats: 1,690 impostor pairs cannot resolve FAR below ~0.06% (1 pair), so the 0.1% point rests on one or two
pairs; the set is mostly Western public figures.

Re-calibrating on local (Thai) data — do this before a deployment goes live, and again after a model change:

1. Published evaluations (NIST FRVT part 3 "Demographic Effects", 2019; the RFW benchmark, Wang et al. 2019)
   show most face models have higher false-match rates and lower accuracy on East and South-East Asian faces
   than on the white faces that dominate their training sets. A threshold chosen on this set will therefore
   usually give *more* false alerts on Thai faces than this report predicts.
2. Collect a local labelled set with consent and a legal basis: ideally several hundred people, 2+ photos each,
   taken from the zone's own cameras (angle, resolution, lighting, night IR) — e.g. volunteer officers walking
   past the cameras, plus enrolment-quality ID photos. Lay it out as ``img*.jpg`` + ``identities.csv``.
3. Run ``evaluate_faces(data_dir=<local set>, out_dir=...)`` and read ``recommended_threshold`` (or pick the
   threshold for the FAR the CCOC can staff: alerts/day ≈ faces/day × watchlist size × FAR).
4. Set it with ``FaceServiceConfig(threshold=...)`` (per engine; embeddings of different engines are not
   comparable) and keep the report with the deployment record. Do not store the calibration photos in the
   watchlist; they are test data, and their embeddings are not persisted by this module.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from serve.face.detect import FaceDetector
from serve.face.embed import FaceEmbedder, WeightsNotFound, make_embedder
from serve.face.images import load_rgb


def default_data_dir() -> Path:
    """``$SSZ_SHARED_DATA/faces_deepface`` or ``../shared/data/faces_deepface`` beside the repository."""
    import os

    env = os.environ.get("SSZ_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return base / "faces_deepface"


def read_identities(data_dir: Path) -> list[tuple[str, str]]:
    """(file, identity) rows of ``identities.csv`` (UTF-8, a BOM allowed; header ``file,identity_id``).

    Raises
    ------
    FileNotFoundError
        when the folder has no ``identities.csv``.
    ValueError
        when the header lacks ``file`` or ``identity_id``, a row leaves either empty, or there is no row."""
    p = data_dir / "identities.csv"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: the labelled face folder needs identities.csv (file,identity_id)")
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("file", "identity_id") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{p}: no column {' or '.join(missing)} (its header is {reader.fieldnames}): the first "
                             "line must be file,identity_id")
        rows = [((r["file"] or "").strip(), (r["identity_id"] or "").strip()) for r in reader]
    empty = [i + 2 for i, (f_, who) in enumerate(rows) if not f_ or not who]
    if empty:
        raise ValueError(f"{p}: line {empty[0]} leaves file or identity_id empty: give both on every line")
    if not rows:
        raise ValueError(f"{p} has no rows")
    return rows


def roc(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, np.ndarray]:
    """FAR and TAR for every distinct threshold (accept when distance <= threshold), thresholds ascending."""
    thr = np.unique(np.concatenate([genuine, impostor]))
    g = np.sort(genuine)
    i = np.sort(impostor)
    tar = np.searchsorted(g, thr, side="right") / max(1, len(g))
    far = np.searchsorted(i, thr, side="right") / max(1, len(i))
    return {"threshold": thr, "far": far, "tar": tar}


def operating_points(curve: dict[str, np.ndarray], fars: tuple[float, ...]) -> dict[str, Any]:
    """TAR at each FAR target (largest threshold with FAR <= target), and the EER with its threshold."""
    thr, far, tar = curve["threshold"], curve["far"], curve["tar"]
    out: dict[str, Any] = {}
    for f in fars:
        ok = np.flatnonzero(far <= f)
        key = f"far_{f:g}"
        if len(ok) == 0:
            out[key] = {"tar": 0.0, "threshold": None, "far": None}
        else:
            k = ok[-1]
            out[key] = {"tar": float(tar[k]), "threshold": float(thr[k]), "far": float(far[k])}
    frr = 1.0 - tar
    k = int(np.argmin(np.abs(far - frr)))
    out["eer"] = {"eer": float((far[k] + frr[k]) / 2), "threshold": float(thr[k])}
    return out


def _embed_set(files: list[Path], detector: FaceDetector, engine: FaceEmbedder) -> tuple[np.ndarray, list[int]]:
    """Embedding of the largest confident face of each photo; indices of photos without a face."""
    embs, failed = [], []
    for n, f in enumerate(files):
        img = load_rgb(str(f))
        [dets] = detector.detect([img])
        if not dets:
            failed.append(n)
            embs.append(np.full(engine.dim, np.nan, np.float32))
            continue
        d = max(dets, key=lambda x: x.area)
        embs.append(engine.embed([engine.chip(img, d)])[0])
    return np.stack(embs), failed


def evaluate_engine(engine: FaceEmbedder, detector: FaceDetector, data_dir: Path,
                    target_far: float = 0.001) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Report (JSON-able) and ROC curve of one engine on one labelled folder."""
    rows = read_identities(data_dir)
    files = [data_dir / f for f, _ in rows]
    labels = np.array([i for _, i in rows])
    t0 = time.perf_counter()
    emb, failed = _embed_set(files, detector, engine)
    secs = time.perf_counter() - t0
    ok = np.setdiff1d(np.arange(len(files)), failed)
    d = engine.distance(emb[ok], emb[ok])
    lab = labels[ok]
    iu = np.triu_indices(len(ok), k=1)
    same = lab[iu[0]] == lab[iu[1]]
    dist = d[iu]
    genuine, impostor = dist[same], dist[~same]
    curve = roc(genuine, impostor)
    pts = operating_points(curve, (0.01, target_far))
    rec = pts[f"far_{target_far:g}"]["threshold"]
    t = engine.threshold
    at_default = {"threshold": t, "tar": float((genuine <= t).mean()), "far": float((impostor <= t).mean())}
    report = {
        **engine.describe(),
        "photos": len(files), "identities": len(set(labels.tolist())), "failed": [str(files[i].name) for i in failed],
        "genuine_pairs": len(genuine), "impostor_pairs": len(impostor),
        "tar_at_far_1pct": pts["far_0.01"]["tar"], "threshold_at_far_1pct": pts["far_0.01"]["threshold"],
        f"tar_at_far_{target_far * 100:g}pct": pts[f"far_{target_far:g}"]["tar"],
        f"threshold_at_far_{target_far * 100:g}pct": rec,
        "eer": pts["eer"]["eer"], "eer_threshold": pts["eer"]["threshold"],
        "recommended_threshold": rec, "recommended_for_far": target_far,
        "at_configured_threshold": at_default,
        "genuine_distance": {"mean": float(genuine.mean()), "max": float(genuine.max())},
        "impostor_distance": {"mean": float(impostor.mean()), "min": float(impostor.min())},
        "seconds": round(secs, 1),
        "roc": {k: [round(float(x), 5) for x in v] for k, v in curve.items()},
    }
    return report, {"genuine": genuine, "impostor": impostor, **curve}


def _plot(results: dict[str, dict[str, np.ndarray]], reports: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(results), figsize=(5 * (1 + len(results)), 4.2))
    ax = axes[0]
    for name, r in results.items():
        far = np.maximum(r["far"], 1e-4)
        ax.step(far, r["tar"], where="post", label=f"{name} (EER {reports[name]['eer']:.3f})")
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0, 1.01)
    ax.axvline(0.01, ls=":", c="grey")
    ax.axvline(0.001, ls=":", c="grey")
    ax.set_xlabel("FAR (impostor pairs accepted)")
    ax.set_ylabel("TAR (genuine pairs accepted)")
    ax.set_title("ROC, verification")
    ax.legend(loc="lower right")
    for ax, (name, r) in zip(axes[1:], results.items(), strict=True):
        bins = np.linspace(0, max(r["impostor"].max(), r["genuine"].max()), 40)
        ax.hist(r["impostor"], bins=bins, alpha=0.6, density=True, label="different people")
        ax.hist(r["genuine"], bins=bins, alpha=0.6, density=True, label="same person")
        rt = reports[name]["recommended_threshold"]
        if rt is not None:
            ax.axvline(rt, c="k", ls="--", label=f"recommended {rt:.3f}")
        ax.axvline(reports[name]["threshold"], c="r", ls=":", label=f"configured {reports[name]['threshold']:.3f}")
        ax.set_title(f"{name}: {reports[name]['metric']} distance")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate_faces(data_dir: str | Path | None = None, out_dir: str | Path = ".", engines: tuple[str, ...] = (
        "dlib", "facenet"), target_far: float = 0.001, max_side: int = 1024, store: Any | None = None,
        detector: FaceDetector | None = None, embedders: dict[str, FaceEmbedder] | None = None) -> dict:
    """Evaluate every available engine; write ``face_eval.json`` and ``face_eval.png`` to ``out_dir``.

    An engine whose weights are not provisioned (facenet without a weights file) is listed under ``skipped``
    with the reason instead of failing the whole evaluation. ``detector`` / ``embedders`` reuse loaded models.
    """
    data = Path(data_dir) if data_dir else default_data_dir()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    detector = detector or FaceDetector(max_side=max_side)
    reports: dict[str, dict[str, Any]] = {}
    curves: dict[str, dict[str, np.ndarray]] = {}
    skipped: dict[str, str] = {}
    for name in engines:
        try:
            eng = (embedders or {}).get(name) or make_embedder(name, **({"store": store} if name == "facenet" else {}))
        except WeightsNotFound as e:
            skipped[name] = str(e)
            continue
        reports[name], curves[name] = evaluate_engine(eng, detector, data, target_far)
    summary = {
        "data_dir": str(data), "target_far": target_far, "engines": reports, "skipped": skipped,
        "json": str(out / "face_eval.json"), "png": str(out / "face_eval.png") if curves else None,
    }
    (out / "face_eval.json").write_text(json.dumps(summary, indent=1))
    if curves:
        _plot(curves, reports, out / "face_eval.png")
    return summary


def main() -> None:
    """``python -m serve.face.evaluate [OUT_DIR]``: run the evaluation and print the headline numbers."""
    import sys

    res = evaluate_faces(out_dir=sys.argv[1] if len(sys.argv) > 1 else "out/face-eval")
    for name, r in res["engines"].items():
        print(json.dumps({k: v for k, v in r.items() if k != "roc"} | {"engine": name}, indent=1))
    for name, why in res["skipped"].items():
        print(f"skipped {name}: {why.splitlines()[0]}")


if __name__ == "__main__":
    main()
