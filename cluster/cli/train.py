"""``ssz train``: train the project's own models (the Thai plate recogniser and the plate-corner regressor). Glue
only: the work is in :mod:`serve.plate.train` and :mod:`serve.plate.train_corners`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cluster.cli.common import fail

app = typer.Typer(help="Train the project's models (seeded, resumable, with a progress bar).", no_args_is_help=True)


@app.command("plates")
def train_plates(
        seed: Annotated[int, typer.Option(help="Seed of the data and the training.")] = 0,
        samples: Annotated[int | None, typer.Option(min=1, help="Rendered training samples \\[default: 64000].")]
        = None,
        val_samples: Annotated[int | None, typer.Option(min=1, help="Rendered validation samples (the figures in "
                                                        "the card and the confidence threshold are chosen on "
                                                        "them; a tiny trial run can use a few hundred) "
                                                        "\\[default: 3000].")] = None,
        steps: Annotated[int | None, typer.Option(min=1, help="Optimiser steps \\[default: 8000].")] = None,
        batch: Annotated[int | None, typer.Option(min=1, help="Batch size \\[default: 64].")] = None,
        lr: Annotated[float | None, typer.Option(help="Peak learning rate of the one-cycle schedule, > 0"
                                                 " \\[default: 0.003].")] = None,
        warmup: Annotated[float | None, typer.Option(min=0.0, max=0.9, help="Fraction of the steps spent warming "
                                                     "up to the peak learning rate \\[default: 0.15].")] = None,
        easy_fraction: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Fraction of the first steps "
                                                            "that draw only clean to moderate samples (the "
                                                            "curriculum; 0 for a fine-tuning stage) \\[default: "
                                                            "0.15].")] = None,
        hard_fraction: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Share of every batch after the "
                                                            "curriculum (--easy-fraction) drawn only from the severe "
                                                            "and harshest plates (share x --batch rounded, at least "
                                                            "1), the rest from all levels: a fine-tuning stage aimed "
                                                            "at small, blurred, dark plates \\[default: 0.0].")]
        = None,
        focus_letters: Annotated[str | None, typer.Option(help="Registration characters (Thai consonants, digits) "
                                                          "whose plates fill --focus-fraction of every batch after "
                                                          "the curriculum: a fine-tuning stage aimed at look-alike "
                                                          "letters (e.g. ฎฏ) \\[default: none].")] = None,
        focus_fraction: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Share of every batch drawn "
                                                             "from the plates of --focus-letters (share x --batch "
                                                             "rounded, at least 1) \\[default: 0.0].")] = None,
        workers: Annotated[int | None, typer.Option(min=1, help="Processes rendering the data \\[default: 2].")]
        = None,
        threads: Annotated[int | None, typer.Option(min=1, help="torch threads while training \\[default: 2].")]
        = None,
        bf16: Annotated[bool | None, typer.Option("--bf16/--fp32", help="Forward pass under bfloat16 autocast "
                                                  "(about 25 % faster a step where the CPU has native bfloat16) "
                                                  "or in float32 \\[default: bf16 when the CPU, or with --device "
                                                  "cuda the GPU (compute capability 8.0 and up), has it].")] = None,
        input_size: Annotated[str | None, typer.Option(help="HxW in px the network reads a plate at: a new "
                                                       "network trained from scratch, or with --init of another size "
                                                       "that network resized and fine-tuned (height a multiple of 8, "
                                                       "32-144; width a multiple of 4, 80-216; e.g. 96x216: finer "
                                                       "strokes, about 2 x the convolutions' cost) \\[default: as "
                                                       "--init has, 64x160 from scratch].")] = None,
        channels: Annotated[str | None, typer.Option(help="C0,C1,C2,C3: channels of the four conv stages, for a new "
                                                     "network trained from scratch (each a multiple of 8, 8-256; "
                                                     "e.g. 16,24,48,96: narrower and faster, to win back part of a "
                                                     "larger --input-size's cost) \\[default: as --init "
                                                     "has, 24,32,64,96 from scratch].")] = None,
        device: Annotated[str | None, typer.Option(help="torch device the network trains on: cpu, or cuda / "
                                                   "cuda:N on a machine with an NVIDIA GPU (the CPU still renders "
                                                   "and augments the data; a run resumes on either) \\[default: "
                                                   "cpu].")] = None,
        init: Annotated[Path | None, typer.Option(help="Weights to start from (a fine-tuning stage) \\[default: "
                                                  "random initialisation].")] = None,
        res_blocks: Annotated[int | None, typer.Option(min=0, help="Residual blocks at the end of the conv "
                                                       "stack, in all (not how many to add): more than the --init "
                                                       "weights have grows them (the added blocks start as "
                                                       "identities, so the grown network reads as its start until "
                                                       "trained); fewer is refused \\[default: as many as --init "
                                                       "has, 0 from scratch].")] = None,
        out: Annotated[Path | None, typer.Option(help="Weights file \\[default: the shipped "
                                                 "serve/plate/data/plate_recogniser.pt].")] = None,
        cache: Annotated[Path | None, typer.Option(help="Data and checkpoints \\[default: "
                                                   "$SSZ_HOME/train/plates].")] = None,
        card_n: Annotated[int, typer.Option(min=1, help="Held-out plates per level for the model card.")] = 200,
) -> None:
    """Render the data, train (resuming from the last checkpoint), write the weights, SHA-256 and model card (a
    finished run asked again keeps the weights, digest and card it wrote)."""
    import json
    import math

    from serve.plate.model import (
        CHANNELS,
        MAX_CHANNELS,
        MAX_INPUT_H,
        MAX_INPUT_W,
        MIN_CHANNELS,
        ModelWeightsError,
        check_channels,
        check_input_size,
    )
    from serve.plate.train import TrainConfig, card_path, train, write_model_card

    if lr is not None and not (math.isfinite(lr) and lr > 0):  # typer has no open lower bound; inf passes min=
        fail(f"--lr {lr}: the peak learning rate must be a finite number above 0 (e.g. 0.003)")
    given = {"samples": samples, "val_samples": val_samples, "steps": steps, "batch": batch, "lr": lr, "warmup": warmup,
             "easy_fraction": easy_fraction, "hard_fraction": hard_fraction, "focus_letters": focus_letters,
             "focus_fraction": focus_fraction, "workers": workers, "threads": threads,
             "bf16": bf16,
             "init": None if init is None else str(init), "res_blocks": res_blocks, "device": device}
    if input_size is not None:
        try:
            given["input_size"] = check_input_size(_whole_numbers(input_size.lower().replace("×", "x"), "x", 2))
        except ValueError:
            fail(f"--input-size {input_size!r}: give HEIGHTxWIDTH in px, the height a multiple of 8 from 32 to "
                 f"{MAX_INPUT_H} and the width a multiple of 4 from 80 to {MAX_INPUT_W} (the default is 64x160; for "
                 "example 96x216)")
    if channels is not None:
        try:
            given["channels"] = check_channels(_whole_numbers(channels, ",", 4))
        except ValueError:
            fail(f"--channels {channels!r}: give four channel counts C0,C1,C2,C3, one per conv stage, each a multiple "
                 f"of 8 from {MIN_CHANNELS} to {MAX_CHANNELS} (the default is {','.join(map(str, CHANNELS))}; for "
                 "example 16,24,48,96)")
    cfg = TrainConfig(seed=seed, **{k: v for k, v in given.items() if v is not None})
    try:  # train() checks the device first, before any model loads or any data is rendered
        res = train(cfg, cache=cache, out=out, log=lambda m: typer.echo(m, err=True))
        card = card_path(Path(res["weights"]))
        if res["written"] or not card.is_file():  # a finished run's card stays with its weights
            card = write_model_card(Path(res["weights"]), n=card_n)
    except (ModelWeightsError, OSError, ValueError) as e:  # --init not a recogniser file, an unwritable --out /
        fail(e)  # --cache, a --device torch cannot train on, --bf16 on a GPU without bfloat16
    except RuntimeError as e:
        if "out of memory" not in str(e):  # torch.OutOfMemoryError and cuDNN's own are RuntimeErrors
            raise
        fail(f"the {cfg.device} ran out of memory at --batch {cfg.batch}: give a smaller --batch (the rendered data "
             "and the last checkpoint are kept, and a new batch size starts a new run)")
    typer.echo(json.dumps({"weights": res["weights"], "sha256": res["sha256"], "bytes": res["bytes"],
                           "validation": res["validation"], "seconds": res["seconds"],
                           "cpu_seconds": res["cpu_seconds"], "bf16": res["config"]["bf16"],
                           "device": res["config"]["device"], "model_card": str(card)},
                          ensure_ascii=False, indent=2))


@app.command("plates-average")
def train_plates_average(
        weights: Annotated[list[Path], typer.Argument(help="Two or more recogniser weights files of one network "
                                                      "(typically stages fine-tuned from the same --init).")],
        seed: Annotated[int, typer.Option(help="Seed whose validation renders choose the confidence threshold (those "
                                          "of `ssz train plates --seed`).")] = 0,
        val_samples: Annotated[int, typer.Option(min=1, help="Validation renders the threshold is chosen on.")] = 3000,
        workers: Annotated[int, typer.Option(min=1, help="Processes rendering the validation data.")] = 2,
        out: Annotated[Path | None, typer.Option(help="Weights file \\[default: the shipped "
                                                 "serve/plate/data/plate_recogniser.pt].")] = None,
        cache: Annotated[Path | None, typer.Option(help="Rendered data \\[default: $SSZ_HOME/train/plates].")] = None,
        card_n: Annotated[int, typer.Option(min=1, help="Held-out plates per level for the model card.")] = 200,
) -> None:
    """Average the parameters of recogniser weights (a model soup), choose its confidence threshold on validation
    renders, write the weights, SHA-256 and model card."""
    import json

    from serve.plate.model import ModelWeightsError
    from serve.plate.train import average_weights, write_model_card

    try:
        res = average_weights(weights, out=out, seed=seed, val_samples=val_samples, cache=cache, workers=workers)
        card = write_model_card(Path(res["weights"]), n=card_n)
    except (ModelWeightsError, OSError, ValueError) as e:  # a missing or foreign file, two networks, bad --out
        fail(e)
    typer.echo(json.dumps({"weights": res["weights"], "sha256": res["sha256"], "bytes": res["bytes"],
                           "averaged": [p["sha256"] for p in res["averaged"]], "validation": res["validation"],
                           "model_card": str(card)}, ensure_ascii=False, indent=2))


def _whole_numbers(text: str, sep: str, n: int) -> tuple[int, ...]:
    """The ``n`` whole numbers written in ``text`` with ``sep`` between them ("96x216", "16,24,48,96"; spaces around
    each allowed). Raises ValueError for anything else (a sign, a decimal point, another count)."""
    parts = text.split(sep)
    if len(parts) != n or not all(p.strip().isdigit() for p in parts):
        raise ValueError(text)
    return tuple(int(p) for p in parts)


@app.command("plate-corners")
def train_plate_corners(
        seed: Annotated[int, typer.Option(min=0, help="Seed of the data and the training.")] = 0,
        samples: Annotated[int, typer.Option(min=1, help="Rendered training crops.")] = 30_000,
        val_samples: Annotated[int, typer.Option(min=1, help="Rendered validation crops.")] = 1_000,
        steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 3_000,
        batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 64,
        workers: Annotated[int, typer.Option(min=1, help="Processes rendering the data.")] = 2,
        threads: Annotated[int, typer.Option(min=1, help="torch threads while training.")] = 2,
        out: Annotated[Path | None, typer.Option(help="Weights file \\[default: the shipped "
                                                 "serve/plate/data/plate_corners.pt].")] = None,
        cache: Annotated[Path | None, typer.Option(help="Checkpoints \\[default: "
                                                   "$SSZ_HOME/train/plate-corners].")] = None,
) -> None:
    """Render plate crops, train the plate-corner regressor (resuming from its checkpoint), write the weights and
    their SHA-256; prints a JSON summary (validation: the worst corner's error, fraction of the crop's side)."""
    import json

    from serve.plate.model import ModelWeightsError
    from serve.plate.train_corners import CornerTrainConfig, train_corners

    cfg = CornerTrainConfig(seed=seed, samples=samples, val_samples=val_samples, steps=steps, batch=batch,
                            workers=workers, threads=threads)
    try:
        res = train_corners(cfg, cache=cache, out=out)
    except (ModelWeightsError, OSError, ValueError) as e:  # an unwritable --out / --cache (or ~user unknown),
        # an unreadable checkpoint
        fail(e)
    typer.echo(json.dumps(res, ensure_ascii=False, indent=2))
