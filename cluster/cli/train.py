"""``ssz train``: train the project's own models (today: the Thai plate recogniser). Glue only: the work is in
:mod:`serve.plate.train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Train the project's models (seeded, resumable, with a progress bar).", no_args_is_help=True)


@app.command("plates")
def train_plates(
        seed: Annotated[int, typer.Option(help="Seed of the data and the training.")] = 0,
        samples: Annotated[int, typer.Option(help="Rendered training samples.")] = 40_000,
        steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 2_400,
        batch: Annotated[int, typer.Option(help="Batch size.")] = 48,
        workers: Annotated[int, typer.Option(help="Processes rendering the data.")] = 2,
        out: Annotated[Path | None, typer.Option(help="Weights file (default: the shipped one).")] = None,
        cache: Annotated[Path | None, typer.Option(help="Data and checkpoints (default $SSZ_HOME/train/plates).")]
        = None,
        card_n: Annotated[int, typer.Option(help="Held-out plates per level for the model card.")] = 200,
) -> None:
    """Render the data, train (resuming from the last checkpoint), write the weights, SHA-256 and model card."""
    import json

    from serve.plate.train import TrainConfig, train, write_model_card

    res = train(TrainConfig(seed=seed, samples=samples, steps=steps, batch=batch, workers=workers), cache=cache,
                out=out, log=lambda m: typer.echo(m, err=True))
    card = write_model_card(Path(res["weights"]), n=card_n)
    typer.echo(json.dumps({"weights": res["weights"], "sha256": res["sha256"], "bytes": res["bytes"],
                           "validation": res["validation"], "seconds": res["seconds"], "model_card": str(card)},
                          ensure_ascii=False, indent=2))
