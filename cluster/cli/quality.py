"""``ssz quality``: recognition quality on labelled data (face ROC, plate accuracy per degradation level)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from cluster.cli.bench import emit_bench

app = typer.Typer(help="Recognition quality on labelled data (face ROC, plate accuracy per degradation).",
                  no_args_is_help=True)


@app.command("faces")
def quality_faces(
        out: Annotated[str, typer.Option(help="Folder for face_eval.json and face_eval.png.")] = "out/face-eval",
) -> None:
    """ROC, TAR at FAR 1% and 0.1%, EER and the recommended threshold per engine on the labelled face set."""
    from cluster.config import shared_data_dir
    from serve.face.evaluate import evaluate_faces

    t0 = time.monotonic()
    res = evaluate_faces(data_dir=shared_data_dir() / "faces_deepface", out_dir=out)
    for r in res["engines"].values():
        r.pop("roc", None)  # the full curve is in the JSON file and the plot
    emit_bench("quality-faces", res, t0)


@app.command("plates")
def quality_plates(n: Annotated[int, typer.Option(help="Plates per degradation level.")] = 50,
                   seed: Annotated[int, typer.Option()] = 10_000,
                   scenes: Annotated[bool, typer.Option(help="Also read plates composited into street scenes.")] = True
                   ) -> None:
    """Whole-plate exact and per-character accuracy per degradation level on rendered Thai plates."""
    from serve.plate.evaluate import evaluate_plates, markdown_table

    t0 = time.monotonic()
    res = evaluate_plates(n=n, seed=seed, scenes=scenes)
    res["markdown"] = markdown_table(res)
    emit_bench("quality-plates", res, t0)
