"""Train the plate recogniser (:mod:`serve.plate.model`) on rendered plates: ``ssz train plates``.

Reproducible and resumable:

1. **Data**: ``samples`` training crops are rendered once into a cache (``<cache>/data-<digest>.npz``; the digest
   covers the seed, the count and the renderer's version), in parallel worker processes. Each sample is sample
   ``i`` of :func:`make_sample` with seed ``seed * 1_000_003 + i``: a plate of a random type, series, province or
   region, training font (never a held-out family) and look, photographed with :data:`TRAIN_DEGRADATION` on a
   training background, then cut out the way a localiser would, imprecisely (corners jittered by up to 5 % of
   the plate, 0-20 % of context, sometimes the axis-aligned box) and warped to the network's input. About 12 %
   are negatives (photo patches, grilles, signs with Thai or Latin text) with an empty target, so the reader
   learns to say "no plate".
2. **Training**: AdamW with a one-cycle schedule, then a cosine fine-tuning phase; CTC loss on the registration,
   cross-entropy on the second line and the vehicle type; torch's RNG seeded and each step's batch drawn from
   ``(seed, step)``; a checkpoint every ``checkpoint_every`` steps (model, optimiser, schedule, step) in the cache,
   from which a re-run with the same options resumes.
3. **Output**: the weights (``serve/plate/data/plate_recogniser.pt`` and its ``.sha256``), the validation figures
   and the confidence threshold chosen on the validation set (reads below it, or failing the grammar, are not
   plates), stored in the weights' metadata; then :func:`write_model_card` adds the held-out figures.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from serve.plate.backgrounds import random_patch
from serve.plate.model import (
    ALPHABET,
    INPUT_H,
    INPUT_W,
    LINE2_CLASSES,
    VEHICLES,
    WEIGHTS_FILE,
    PlateNet,
    Recogniser,
    save_weights,
    standardise,
)
from serve.plate.parse import PlateParseError, parse_plate
from serve.plate.render import (
    DEGRADATIONS,
    LEVELS,
    PLATE_TYPES,
    TRAIN_DEGRADATION,
    TYPE_P,
    Degradation,
    _pick_face,
    draw_plate,
    photograph,
    random_plate,
    registration_text,
    spoil,
)

DATA_VERSION = 3
"""Bump when the sample generator changes, so caches made by an older one are not re-used."""
NEGATIVE_P = 0.12


@dataclass(frozen=True)
class TrainConfig:
    """Options of one training run (all of them enter the checkpoint, so a resume continues the same run)."""

    seed: int = 0
    samples: int = 40_000
    val_samples: int = 2_000
    steps: int = 1_600
    """One-cycle steps (warm-up to ``lr``, anneal)."""
    finetune_steps: int = 1_600
    """Then cosine decay from ``lr / 5`` to 0 (a run that stopped after the one-cycle phase continues here)."""
    batch: int = 48
    lr: float = 3e-3
    weight_decay: float = 1e-4
    checkpoint_every: int = 200
    workers: int = 2
    threads: int = 1
    """torch threads: on a shared 2-core machine one thread per process beats two (no OpenMP spin-waits), and
    the data workers have rendered everything before training starts."""


def _warp(photo: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp ``quad`` of ``photo`` to the grey INPUT_H x INPUT_W canvas (area-filtered when shrinking)."""
    g = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY) if photo.ndim == 3 else photo
    width = float(np.linalg.norm(quad[1] - quad[0]))
    k = 2 if width > 1.6 * INPUT_W else 1
    dst = np.float32([[0, 0], [INPUT_W * k, 0], [INPUT_W * k, INPUT_H * k], [0, INPUT_H * k]])
    m = cv2.getPerspectiveTransform(np.asarray(quad, np.float32), dst)
    out = cv2.warpPerspective(g, m, (INPUT_W * k, INPUT_H * k), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return out if k == 1 else cv2.resize(out, (INPUT_W, INPUT_H), interpolation=cv2.INTER_AREA)


def jitter_quad(quad: np.ndarray, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """The quad an imprecise localiser would give: corners moved, some context added, or the axis-aligned box."""
    q = np.asarray(quad, np.float32).copy()
    w = float(np.linalg.norm(q[1] - q[0]))
    c = q.mean(axis=0)
    if rng.random() < 0.12:  # the axis-aligned box around the plate (a detector's box)
        x0, y0 = q.min(axis=0)
        x1, y1 = q.max(axis=0)
        q = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        c = q.mean(axis=0)
    sx, sy = rng.uniform(0.96, 1.12), rng.uniform(0.95, 1.22)
    q = c + (q - c) * np.float32([sx, sy])
    q += rng.normal(0, rng.uniform(0.0, 0.025) * w, (4, 2)).astype(np.float32)
    q += rng.uniform(-0.03, 0.03, 2).astype(np.float32) * w
    return q.astype(np.float32)


def _negative(rng: np.random.Generator) -> np.ndarray:
    """A crop that is not a plate: a photo patch, a grille, a sign with text, or a plate-like blank panel."""
    w, h = int(rng.integers(60, 300)), 0
    h = int(w / rng.uniform(1.2, 3.0))
    r = rng.random()
    if r < 0.35:
        img = random_patch(rng, w, h, "train")
    elif r < 0.6:  # radiator grille / slats
        img = np.empty((h, w, 3), np.uint8)
        img[:] = rng.integers(0, 90, 3)
        period = max(3, int(rng.uniform(0.06, 0.25) * h))
        light = tuple(int(x) for x in rng.integers(120, 255, 3))
        horizontal = rng.random() < 0.7
        for k in range(0, h if horizontal else w, period):
            t = max(1, period // int(rng.integers(2, 4)))
            if horizontal:
                cv2.rectangle(img, (0, k), (w, k + t), light, -1)
            else:
                cv2.rectangle(img, (k, 0), (k + t, h), light, -1)
    else:  # a sign or a badge: text that is not a registration
        from PIL import Image, ImageDraw

        face = _pick_face(rng, "train")
        bg = tuple(int(x) for x in rng.integers(0, 255, 3))
        fg = tuple(int(255 - x) for x in bg)
        pil = Image.new("RGB", (w * 2, h * 2), bg)
        d = ImageDraw.Draw(pil)
        from serve.plate.render import _font

        if rng.random() < 0.5:
            words = ["ร้านอาหาร", "ถนน", "ซอย", "ห้ามจอด", "โรงเรียน", "ตลาด", "ยินดีต้อนรับ", "บริการ", "ขาย"]
            text = words[int(rng.integers(len(words)))]
            path = str(face.thai)
        else:
            text = "".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(3, 8))))
            path = str(face.digits)
        d.text((int(0.1 * w), int(0.2 * h)), text, font=_font(path, max(8, int(h * 0.9))), fill=fg)
        img = cv2.resize(np.asarray(pil)[:, :, ::-1], (w, h), interpolation=cv2.INTER_AREA)
    img, _ = spoil(np.ascontiguousarray(img), TRAIN_DEGRADATION, rng)
    return img


def _train_degradation(rng: np.random.Generator) -> Degradation:
    """A test level widened on every axis (wider size range, steeper angles), or the harshest mixture."""
    if rng.random() < 0.1:
        return TRAIN_DEGRADATION
    d = DEGRADATIONS[LEVELS[int(rng.choice(4, p=[0.15, 0.3, 0.3, 0.25]))]]
    return replace(d, width=(max(40, int(d.width[0] * 0.65)), int(d.width[1] * 1.3)), yaw=d.yaw * 1.2,
                   pitch=d.pitch * 1.2, roll=d.roll * 1.2, jpeg_quality=(max(12, d.jpeg_quality[0] - 10),
                                                                          d.jpeg_quality[1]))


def make_sample(seed: int) -> tuple[np.ndarray, str, int, int, str]:
    """One training sample: (INPUT_H x INPUT_W grey uint8, CTC target, second-line class, vehicle class or -100,
    plate type or 'negative')."""
    rng = np.random.default_rng(seed)
    if rng.random() < NEGATIVE_P:
        img = _negative(rng)
        h, w = img.shape[:2]
        q = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        return _warp(img, q + rng.uniform(-0.05, 0.05, (4, 2)).astype(np.float32) * w), "", 0, -100, "negative"
    ptype = PLATE_TYPES[int(rng.choice(len(PLATE_TYPES), p=TYPE_P))]
    plate = random_plate(rng, ptype)
    face = _pick_face(rng, "train")
    style = "private" if ptype == "motorcycle" else ptype
    if ptype == "motorcycle" and rng.random() < 0.25:
        style = "yellow"
    moto = ptype == "motorcycle"
    dash = bool(plate.letters) and not moto and rng.random() < (0.8 if style == "red" else 0.05)
    pic = random_patch(rng, 200, 90, "train") if style == "picture" else None
    clean = draw_plate(plate, face, style, "motorcycle" if moto else "car", rng, 0.5, pic, dash=dash)
    photo, quad, _ = photograph(clean, _train_degradation(rng), rng, "train")
    x = _warp(photo, jitter_quad(quad, rng, photo.shape))
    target = f"{plate.category}{plate.letters}{plate.number}" if moto else registration_text(plate, dash)
    target = target.replace(" ", "")
    return x, target, LINE2_CLASSES.index(plate.line2 or ""), VEHICLES.index("motorcycle" if moto else "car"), ptype


def _render_chunk(args: tuple[int, int]) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, list[str]]:
    start, stop = args
    cv2.setNumThreads(1)
    xs, ts, l2, vs, ty = [], [], [], [], []
    for i in range(start, stop):
        x, t, k2, kv, p = make_sample(i)
        xs.append(x)
        ts.append(t)
        l2.append(k2)
        vs.append(kv)
        ty.append(p)
    return np.stack(xs), ts, np.array(l2, np.int16), np.array(vs, np.int16), ty


CHUNK = 250


def render_dataset(first_seed: int, n: int, cache: Path, workers: int = 2, label: str = "data",
                   progress: bool = True) -> dict[str, Any]:
    """Render samples ``first_seed .. first_seed + n - 1``, cached chunk by chunk (so an interrupted run resumes
    and a larger ``n`` re-uses what exists) under a folder keyed by the first seed and :data:`DATA_VERSION`."""
    folder = cache / f"{label}-v{DATA_VERSION}-{first_seed}"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(first_seed + s, first_seed + min(n, s + CHUNK)) for s in range(0, n, CHUNK)]
    paths = [folder / f"{a - first_seed:08d}-{b - a}.npz" for a, b in jobs]
    todo = [(j, p) for j, p in zip(jobs, paths, strict=True) if not p.is_file()]
    bar = _bar(len(jobs), f"rendering {label} ({n} samples)", progress)
    bar.update(len(jobs) - len(todo))

    def keep(r: Any, p: Path) -> None:
        tmp = p.with_suffix(".tmp.npz")
        np.savez(tmp, x=r[0], target=np.array(r[1]), line2=r[2], vehicle=r[3], ptype=np.array(r[4]))
        os.replace(tmp, p)
        bar.update(1)

    if workers > 1 and todo:
        with ProcessPoolExecutor(workers) as ex:
            for r, (_, p) in zip(ex.map(_render_chunk, [j for j, _ in todo]), todo, strict=True):
                keep(r, p)
    else:
        for j, p in todo:
            keep(_render_chunk(j), p)
    bar.close()
    parts = [np.load(p, allow_pickle=False) for p in paths]
    return {k: np.concatenate([z[k] for z in parts]) for k in ("x", "target", "line2", "vehicle", "ptype")}


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not enabled, dynamic_ncols=True)


def _encode_targets(targets: list[str]) -> tuple[Any, Any]:
    import torch

    idx = {c: i + 1 for i, c in enumerate(ALPHABET)}
    flat = [idx[c] for t in targets for c in t]
    return torch.tensor(flat, dtype=torch.long), torch.tensor([len(t) for t in targets], dtype=torch.long)


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cheap per-step augmentation of cached crops: a small shift and sometimes inverted polarity or gamma."""
    out = x.copy()
    for i in range(len(out)):
        if rng.random() < 0.3:
            dx, dy = int(rng.integers(-4, 5)), int(rng.integers(-3, 4))
            out[i] = np.roll(out[i], (dy, dx), axis=(0, 1))
        if rng.random() < 0.2:
            g = rng.uniform(0.6, 1.6)
            out[i] = np.clip(255.0 * (out[i] / 255.0) ** g, 0, 255).astype(np.uint8)
    return out


def _tensor(x: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.stack([standardise(g) for g in x])[:, None])


def evaluate_val(net: PlateNet, val: dict[str, Any], batch: int = 256) -> dict[str, Any]:
    """Validation figures (in-distribution: training fonts and backgrounds, unseen seeds) and the threshold."""
    rec = Recogniser(net=net)
    pos_conf, neg_conf = [], []
    reg_ok = l2_ok = whole = n_pos = 0
    per_type: dict[str, list[int]] = {}
    for i in range(0, len(val["x"]), batch):
        reads = rec.recognise(list(val["x"][i: i + batch]))
        for j, r in enumerate(reads):
            k = i + j
            t, ptype = str(val["target"][k]), str(val["ptype"][k])
            if ptype == "negative":
                neg_conf.append(r.confidence if _parses(r.text) else 0.0)
                continue
            n_pos += 1
            ok_r = r.text.replace("-", "") == t.replace("-", "")
            ok_2 = r.line2 == LINE2_CLASSES[int(val["line2"][k])]
            reg_ok += ok_r
            l2_ok += ok_2
            whole += ok_r and ok_2
            per_type.setdefault(ptype, [0, 0])
            per_type[ptype][0] += ok_r and ok_2
            per_type[ptype][1] += 1
            pos_conf.append(r.confidence if ok_r else -1.0)
    neg = np.array(neg_conf or [0.0])
    # the lowest threshold that rejects 99 % of the negatives that parse as a plate
    threshold = float(min(0.9, max(0.05, np.quantile(neg, 0.99) + 1e-3)))
    good = [c >= threshold for c in pos_conf if c >= 0]
    kept = float(np.mean(good)) if good else 0.0
    return {"n": n_pos, "negatives": len(neg_conf), "whole_exact": round(whole / max(1, n_pos), 4),
            "registration_exact": round(reg_ok / max(1, n_pos), 4), "line2_exact": round(l2_ok / max(1, n_pos), 4),
            "per_type": {k: round(v[0] / v[1], 4) for k, v in sorted(per_type.items())},
            "min_confidence": round(threshold, 4), "correct_reads_kept_at_threshold": round(kept, 4),
            "negatives_passing": round(float(np.mean(neg >= threshold)), 4)}


def _parses(text: str) -> bool:
    try:
        parse_plate(text, None, lenient=True)
    except PlateParseError:
        return False
    return True


def train(config: TrainConfig | None = None, cache: Path | None = None, out: Path | None = None,
          progress: bool = True, log: Any = None) -> dict[str, Any]:
    """Run (or resume) a training run; write the weights to ``out`` (default: the shipped file); return a summary.

    ``cache`` holds the rendered data and the checkpoints (default ``$SSZ_HOME/train/plates``).
    """
    import torch
    from torch import nn

    cfg = config or TrainConfig()
    cache = cache or Path(os.environ.get("SSZ_HOME", Path.home() / ".local/state/ssz")) / "train" / "plates"
    out = out or WEIGHTS_FILE
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.monotonic()
    base = cfg.seed * 1_000_003
    train_data = render_dataset(base, cfg.samples, cache, cfg.workers, "train", progress)
    val = render_dataset(base + 50_000_000, cfg.val_samples, cache, cfg.workers, "val", progress)
    t_data = time.monotonic() - t0
    net = PlateNet().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.15)
    key = {k: v for k, v in asdict(cfg).items() if k != "finetune_steps"}  # a longer fine-tune resumes the run
    ckpt_path = cache / f"ckpt-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]}.pt"
    total = cfg.steps + cfg.finetune_steps
    step = 0
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        step = int(ck["step"])
        torch.set_rng_state(ck["torch_rng"])
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    ce2 = nn.CrossEntropyLoss(label_smoothing=0.05)
    cev = nn.CrossEntropyLoss(ignore_index=-100)
    n = len(train_data["x"])
    bar = _bar(total, "training", progress)
    bar.update(step)
    net.train()
    t_train = time.monotonic()
    losses: list[float] = []
    while step < total:
        if step >= cfg.steps:  # fine-tuning: cosine from lr / 5 down to 0
            for g in opt.param_groups:
                g["lr"] = cfg.lr / 5 * 0.5 * (1 + math.cos(math.pi * (step - cfg.steps) / max(1, cfg.finetune_steps)))
        rng = np.random.default_rng([cfg.seed, step])
        idx = rng.integers(0, n, cfg.batch)
        x = _tensor(_augment(train_data["x"][idx], rng))
        targets = [str(t) for t in train_data["target"][idx]]
        flat, lens = _encode_targets(targets)
        logits, l2, veh = net(x)
        logp = torch.log_softmax(logits, -1).transpose(0, 1)  # (T, B, K)
        loss = (ctc(logp, flat, torch.full((cfg.batch,), logp.shape[0], dtype=torch.long), lens)
                + ce2(l2, torch.from_numpy(train_data["line2"][idx].astype(np.int64)))
                + 0.3 * cev(veh, torch.from_numpy(train_data["vehicle"][idx].astype(np.int64))))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if step < cfg.steps:
            sched.step()
        step += 1
        losses.append(float(loss.detach()))
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        if step % cfg.checkpoint_every == 0 or step in (cfg.steps, total):
            torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "step": step, "torch_rng": torch.get_rng_state()}, ckpt_path)
            if log is not None:
                log(f"step {step}/{total} loss {np.mean(losses[-50:]):.4f} "
                    f"elapsed {time.monotonic() - t0:.0f}s")
    bar.close()
    net.eval()
    val_res = evaluate_val(net, val)
    meta = {"config": asdict(cfg), "data_version": DATA_VERSION, "validation": val_res,
            "min_confidence": val_res["min_confidence"], "alphabet": ALPHABET, "line2_classes": list(LINE2_CLASSES),
            "seconds": {"data": round(t_data), "train": round(time.monotonic() - t_train),
                        "total": round(time.monotonic() - t0)},
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    digest = save_weights(net, out, meta)
    return {"weights": str(out), "sha256": digest, "bytes": out.stat().st_size, **meta,
            "final_loss": round(float(np.mean(losses[-50:])) if losses else math.nan, 4)}


def write_model_card(weights: Path, n: int = 200, seed: int = 10_000, out: Path | None = None) -> Path:
    """Write ``MODEL_CARD.md`` beside the weights: data, augmentations, validation and held-out figures per plate
    type and level (measured now through the real service path), throughput, known limits. Returns its path."""
    from serve.plate.bench import bench_engine
    from serve.plate.evaluate import evaluate_plates
    from serve.plate.fonts import families
    from serve.plate.model import load_net, sha256_of
    from serve.plate.ocr import LearnedEngine
    from serve.plate.service import PlateService

    _, meta = load_net(weights, expected_sha256=sha256_of(weights))
    svc = PlateService(engine=LearnedEngine(weights=weights, sha256=sha256_of(weights)))
    ev = evaluate_plates(n=n, seed=seed, engines=("model",), services={"model": svc})["engines"]["model"]["crops"]
    speed = bench_engine(svc, n=64, kinds=("recogniser",))["recogniser"]
    val = meta.get("validation", {})
    cfg = meta.get("config", {})
    secs = meta.get("seconds", {})
    lines = [
        "# Model card: Thai plate recogniser (`plate_recogniser.pt`)", "",
        f"- weights: `{weights.name}`, {weights.stat().st_size / 1e6:.2f} MB, SHA-256 `{sha256_of(weights)}` "
        f"(also in `{weights.with_suffix('.sha256').name}`, checked at every load)",
        f"- trained {meta.get('trained_at', '?')} by `ssz train plates` (seed {cfg.get('seed')}, {cfg.get('samples')} "
        f"rendered samples, {cfg.get('steps')} steps of {cfg.get('batch')}); data {secs.get('data')} s, training "
        f"{secs.get('train')} s on this machine (2 shared CPU cores)",
        "- network: CNN (stride-2 stem, 5 conv layers, channels-last) -> 3 learned row-attention sequences -> "
        "BiGRU -> CTC over 42 consonants, 10 digits and '-'; second line classified over the 77 provinces, the "
        "region lines (เบตง) and 'none'; car / motorcycle layout head. Input: grey 64 x 160, standardised.", "",
        "## Data", "",
        "Every sample is rendered by `serve/plate/render.py` (no real photo is used for training):",
        "- plate types: private (black on white), green (commercial), yellow (taxi / public, also digits-only "
        "`32-0394`), red (dealer, `ผ-9324`), blue, picture (auction plates on a photo background), motorcycle "
        "(3 rows, also yellow); series: 1-2 consonants with or without a leading digit, 3 consonants "
        "(motorcycles), digits only; numbers of 1-4 digits; the 77 provinces and region lines (4 %);",
        f"- training font families ({len(families('train'))}): {', '.join(families('train'))};",
        f"- held-out font families, never used in training ({len(families('heldout'))}): "
        f"{', '.join(families('heldout'))};",
        "- weight (stroke), width (0.7-1.25 horizontal scale) and spacing vary per plate; glyphs are drawn one by "
        "one (Thai from the Thai file, digits from the font's Latin file), line positions jitter;",
        "- backgrounds: opencv-doc sample images and videos and scikit-image images; `vtest.avi` (the simulated "
        "city's street) and 12 stills are held out;",
        "- 12 % negatives (photo patches, grilles, signs with Thai or Latin text) with an empty target.", "",
        "## Augmentations (photo effects)", "",
        "3-D rotation (yaw up to ±36°, pitch ±24°, roll ±12°) seen by a pinhole camera; plate width 40-390 px; "
        "defocus (Gaussian) and motion blur; sensor noise; JPEG quality 12-95; night (dark, low contrast, warm) "
        "and IR (greyscale); exposure and contrast; glare spots; shadow bands; mud specks; plate frames and screw "
        "holes; partial occlusion of an edge; imprecise localisation (corners jittered, 0-20 % context, sometimes "
        "the axis-aligned box); per-step shifts and gamma.", "",
        "## Validation (training fonts and backgrounds, unseen seeds)", "",
        f"n = {val.get('n')} plates + {val.get('negatives')} negatives: whole plate {val.get('whole_exact')}, "
        f"registration {val.get('registration_exact')}, second line {val.get('line2_exact')}; per type "
        f"{val.get('per_type')}.",
        f"Confidence threshold (rejects 99 % of negatives whose read parses as a plate): "
        f"**{meta.get('min_confidence')}**; correct reads kept at it: {val.get('correct_reads_kept_at_threshold')}.",
        "", f"## Held-out rendered test (held-out fonts and backgrounds, n = {n} per level, seed {seed}, "
        "`ssz quality plates`)", "",
        "| level | type | n | whole plate | registration | province | char accuracy |", "|---|---|---|---|---|---|---|"]
    for lv, r in ev.items():
        for t, v in [("all", r), *r["per_type"].items()]:
            lines.append(f"| {lv} | {t} | {v['n']} | {v['exact']:.1%} | {v['registration_exact']:.1%} | "
                         f"{v['province_exact']:.1%} | {v['char_accuracy']:.1%} |")
    lines += ["", "## Throughput (recogniser alone, rectified plates, this machine)", "",
              f"batch 1: {speed['1']['plates_per_s']} plates/s; batch 16: {speed['16']['plates_per_s']} plates/s "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores while measuring).", "",
              "## Known limits", "",
              "- trained on renders only: real plates differ in the official typeface, reflective film, embossing "
              "and wear; check a deployment on its own cameras with `ssz quality plates --images DIR --labels CSV`;",
              "- the second line is a closed set (77 provinces + region lines): a name outside it is read as the "
              "nearest class or 'none';",
              "- plates narrower than about 60 px, heavy motion blur or night glare are often unreadable; the "
              "confidence threshold then drops the read rather than guess;",
              "- one plate per rectified crop; the localiser's candidates must contain the whole plate;",
              "- the dash of dealer and digits-only plates is read but not kept in the registration key."]
    path = out or weights.with_name("MODEL_CARD.md")
    path.write_text("\n".join(lines) + "\n")
    return path
