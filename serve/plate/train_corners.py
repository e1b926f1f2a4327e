"""Train the plate-corner regressor (:mod:`serve.plate.corners`) on rendered crops: ``ssz train plate-corners``.

Seeded and reproducible, with a progress bar, resumable from a checkpoint every ``checkpoint_every`` steps, sized for
2 CPU cores: the default run (30,000 crops, 3,000 steps of 64) took about 3 minutes of rendering and 9 of training on
this project's shared 2-core machine (bfloat16 forward pass).

Data: sample ``i`` is :func:`serve.plate.render.render_plate` with seed ``SEED_BASE + seed * 1_000_003 + i`` in the
*training* fonts and backgrounds (never the held-out ones; the seeds are disjoint from the validation crops of
``ssz train plates``, 500000-800149, and from the held-out test's, 10000 onwards) at a level drawn clean 15 %, mild
30 %, moderate 30 %, severe 25 %; 70 % of the crops are cut again to a random margin, as a detector's box would be
(each side keeps 0-100 % of its background, sometimes trimming a few pixels off the plate). The target is the
plate's true quad as fractions of the crop's width and height. Validation: ``val_samples`` crops of seeds
``VAL_SEED_BASE`` onwards, scored by the worst corner's error (fraction of the crop's side).

Training: AdamW with a one-cycle schedule, L1 loss on the corner fractions, each step's batch drawn from
``(seed, step)``, per-step contrast and noise augmentation.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from serve.keys import write_private
from serve.plate.corners import CORNERS_FILE, CROP_H, CROP_W, CornerNet
from serve.plate.model import ModelWeightsError, grey_resized, save_weights, standardise_batch
from serve.plate.render import LEVELS, render_plate
from serve.state import ssz_home

CORNER_DATA_VERSION = 1
"""Bump when :func:`corner_sample` (or the renderer under it) changes: it enters the checkpoint's key, so a run of
older data is not resumed on new data."""
SEED_BASE = 3_000_000
VAL_SEED_BASE = 2_900_000
LEVEL_P = (0.15, 0.3, 0.3, 0.25)
"""Share of each test level (clean, mild, moderate, severe) among the training crops."""
RECUT_P = 0.7
"""Fraction of the crops cut again to random margins (a detector's box)."""


@dataclass(frozen=True)
class CornerTrainConfig:
    """Options of one training run of the corner regressor (all but ``workers``, ``threads`` and
    ``checkpoint_every`` enter the checkpoint's key, so a re-run with the same options resumes it)."""

    seed: int = 0
    samples: int = 30_000
    val_samples: int = 1_000
    steps: int = 3_000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    checkpoint_every: int = 500
    workers: int = 2
    threads: int = 2


def corner_sample(seed: int, recut: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One sample: (CROP_H x CROP_W grey uint8 crop, (4, 2) float32 corners as fractions of the crop's width and
    height: TL, TR, BR, BL). ``recut``: allow the random detector-box margins (off for validation crops, which keep
    the rendered margins of 15-60 % of the plate's width)."""
    rng = np.random.default_rng([seed, 17])
    level = LEVELS[int(rng.choice(len(LEVELS), p=LEVEL_P))]
    r = render_plate(seed, level, fonts="train")
    img, q = r.image, r.quad.astype(np.float32)
    h, w = img.shape[:2]
    if recut and rng.random() < RECUT_P:
        (x0, y0), (x1, y1) = q.min(axis=0), q.max(axis=0)
        keep = rng.uniform(0.0, 1.0, 4)  # share of each side's background kept: left, top, right, bottom
        trim = 0.03 * (x1 - x0) * rng.random() if rng.random() < 0.15 else 0.0  # a box a little inside the plate
        cx0 = int(x0 * (1.0 - keep[0]) + trim)
        cy0 = int(y0 * (1.0 - keep[1]))
        cx1 = int(min(w, x1 + keep[2] * (w - x1) - trim))
        cy1 = int(min(h, y1 + keep[3] * (h - y1)))
        if cx1 - cx0 >= 16 and cy1 - cy0 >= 8:
            img, q = img[cy0:cy1, cx0:cx1], q - np.float32([cx0, cy0])
    h, w = img.shape[:2]
    return grey_resized(img, CROP_H, CROP_W), (q / np.float32([w, h])).astype(np.float32)


def _render_chunk(args: tuple[int, int, bool]) -> tuple[np.ndarray, np.ndarray]:
    start, stop, recut = args
    cv2.setNumThreads(1)
    rows = [corner_sample(i, recut) for i in range(start, stop)]
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


def render_corner_data(first_seed: int, n: int, workers: int = 2, recut: bool = True,
                       progress: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``first_seed`` .. ``first_seed + n - 1`` (:func:`corner_sample`), rendered in ``workers`` processes
    (1: in this one): (n, CROP_H, CROP_W) uint8 crops and (n, 4, 2) float32 corners. ``progress``: a tqdm bar to
    advance by each chunk's size."""
    chunk = 250
    jobs = [(s, min(s + chunk, first_seed + n), recut) for s in range(first_seed, first_seed + n, chunk)]
    parts = []
    with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as ex:
        for part in (ex.map if ex is not None else map)(_render_chunk, jobs):
            parts.append(part)
            if progress is not None:
                progress.update(len(part[0]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def corner_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each sample's worst corner error: max over corners and axes of |pred - truth|, in fractions of the crop's
    side; ``pred`` and ``truth`` are (n, 4, 2)."""
    return np.abs(pred - truth).max(axis=(1, 2))


def _checkpoint_path(cache: Path, cfg: CornerTrainConfig, bf16: bool) -> Path:
    """The run's checkpoint: keyed by the options that change the weights (not the validation crops, the checkpoint
    interval, the workers or the threads), the data version and the precision."""
    key = {k: v for k, v in asdict(cfg).items() if k not in ("checkpoint_every", "workers", "threads", "val_samples")}
    key["bf16"] = bf16
    return cache / f"corners-v{CORNER_DATA_VERSION}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]}.pt"


def train_corners(config: CornerTrainConfig | None = None, cache: Path | None = None, out: Path | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Render the data, train (resuming from the run's checkpoint in ``cache``, default
    ``$SSZ_HOME/train/plate-corners``), write the weights to ``out`` (default: the shipped
    ``serve/plate/data/plate_corners.pt``) and its ``.sha256``; return a summary (weights, sha256, bytes, validation
    median and 90th percentile of the worst corner's error, the step a checkpoint resumed from, seconds). Raises
    OSError, before any work, when ``out`` or ``cache`` cannot be written, ValueError for a ``~user`` path of an
    unknown user, and ModelWeightsError when the run's checkpoint is unreadable (naming it: delete it to start
    again)."""
    import torch

    from serve.plate.train import _bar, check_writable, expanded

    cfg = config or CornerTrainConfig()
    cache = expanded(cache, "--cache") if cache else ssz_home() / "train" / "plate-corners"
    out = expanded(out, "--out") if out else CORNERS_FILE
    check_writable(out, "the weights file", folder=False, example=CORNERS_FILE.name)
    check_writable(cache, "the cache folder", folder=True)
    cache.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    with _bar(cfg.samples + cfg.val_samples, "render crops", progress) as bar:
        x, q = render_corner_data(SEED_BASE + cfg.seed * 1_000_003, cfg.samples, cfg.workers, True, bar)
        vx, vq = render_corner_data(VAL_SEED_BASE, cfg.val_samples, cfg.workers, False, bar)
    data_s = time.time() - t0
    net = CornerNet()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    ckpt = _checkpoint_path(cache, cfg, bf16)
    start = 0
    if ckpt.is_file():
        try:  # a checkpoint cut short, or of another network, must not end the run in torch's traceback
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            start = int(state["step"])
        except Exception as e:
            raise ModelWeightsError(f"the training checkpoint {ckpt} is unreadable ({type(e).__name__}): delete it to "
                                    "start this run again from step 0") from e
    t1 = time.time()
    bar = _bar(cfg.steps, "train corners", progress)
    bar.update(start)
    for step in range(start, cfg.steps):
        bar.update(1)
        net.train()
        rng = np.random.default_rng([cfg.seed, step])
        idx = rng.integers(0, len(x), cfg.batch)
        xb = standardise_batch(x[idx])
        xb = xb * float(rng.uniform(0.7, 1.3)) + torch.randn(xb.shape, generator=torch.Generator().manual_seed(
            int(rng.integers(1 << 31)))) * float(rng.uniform(0.0, 0.15))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = net(xb)
        loss = (pred.float() - torch.from_numpy(q[idx])).abs().sum(dim=-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            buf = io.BytesIO()
            torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "step": step + 1}, buf)
            write_private(ckpt, buf.getvalue())  # atomic: a crash leaves the last whole checkpoint
    bar.close()
    net.eval()
    with torch.inference_mode():
        pv = np.concatenate([net(standardise_batch(vx[i:i + 256])).numpy() for i in range(0, len(vx), 256)])
    err = corner_errors(pv, vq)
    val = {"n": len(vx), "worst_corner_median": round(float(np.median(err)), 4),
           "worst_corner_p90": round(float(np.quantile(err, 0.9)), 4)}
    meta = {"config": asdict(cfg), "validation": val, "bf16": bf16, "resumed_from": start,
            "trained": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": {"data": round(data_s, 1), "training": round(time.time() - t1, 1)}}
    digest = save_weights(net, out, meta)
    ckpt.unlink(missing_ok=True)
    return {"weights": str(out), "sha256": digest, "bytes": out.stat().st_size, **meta}
