"""``ssz quality``: recognition quality on labelled data (face ROC, plate accuracy per degradation level)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from cluster.cli.bench import emit_bench
from cluster.cli.common import fail, warn

FontsChoice = Literal["heldout", "validation"]
"""Font splits `ssz quality plates` renders (training fonts are never a measure)."""

app = typer.Typer(help="Recognition quality on labelled data (face ROC, plate accuracy per degradation).",
                  no_args_is_help=True)


@app.command("faces")
def quality_faces(
        out: Annotated[Path | None, typer.Option(help="Folder for face_eval.json and face_eval.png (default: "
                                                      "<state>/out/face-eval).")] = None,
) -> None:
    """ROC, TAR at FAR 1% and 0.1%, EER and the recommended threshold per engine on the labelled face set."""
    from cluster.config import shared_data_dir
    from cluster.state import state_dir
    from serve.face.evaluate import evaluate_faces

    t0 = time.monotonic()
    data = shared_data_dir() / "faces_deepface"
    if not (data / "identities.csv").is_file():
        fail(f"the labelled face set is not at {data} (no identities.csv there): place the shared data beside the "
             "repository (../shared/data) or set SSZ_SHARED_DATA to its folder")
    res = evaluate_faces(data_dir=data, out_dir=out or state_dir("out") / "face-eval")
    for r in res["engines"].values():
        r.pop("roc", None)  # the full curve is in the JSON file and the plot
    emit_bench("quality-faces", res, t0)


@app.command("plates")
def quality_plates(n: Annotated[int, typer.Option(min=1, help="Plates per degradation level.")] = 100,
                   seed: Annotated[int, typer.Option(help="First seed of the renders (plate i is seed + i; "
                                                     "the model card uses 10000).")] = 10_000,
                   scenes: Annotated[bool, typer.Option(help="Also read plates composited into street scenes.")] = True,
                   scene_scale: Annotated[float, typer.Option(
                       help="Shrink the 640 x 480 scenes by this before they are read: 0.5 reads 320 x 240 frames, "
                            "0.3 192 x 144 (a low-resolution camera, or a camera's crop of one vehicle).")] = 1.0,
                   engines: Annotated[str, typer.Option(
                       help="Comma-separated OCR engines: model, tesseract, paddle.")] = "model,tesseract",
                   images: Annotated[Path | None, typer.Option(help="Folder of real labelled photos.")] = None,
                   labels: Annotated[Path | None, typer.Option(
                       help="CSV or .xlsx with a header row file,plate (with --images).")] = None,
                   draft_labels: Annotated[Path | None, typer.Option(
                       help="With --images and no --labels: read every photo with the model and write a draft "
                            "labels CSV (file, plate as read, confidence, every plate read, what to check) to check "
                            "against the photos by hand, then score with --labels. Never overwrites a file.")] = None,
                   weights: Annotated[Path | None, typer.Option(
                       help="Recogniser weights for the model engine, e.g. the --out of `ssz train plates` "
                            "(its .sha256 beside it) \\[default: the shipped weights].")] = None,
                   fonts: Annotated[FontsChoice, typer.Option(
                       help="Font split of the rendered set (not used with --images): heldout (the test: "
                            "held-out fonts and backgrounds), or validation (fonts used by neither training nor the "
                            "test, on training backgrounds: how a training stage reads an unseen typeface, to choose "
                            "a stage without the test)."
                   )] = "heldout",
                   paddle_model: Annotated[Path | None, typer.Option(
                       help="Folder of the exported PP-OCR Thai recognition model, for the paddle engine (needs "
                            "`pip install .\\[paddle]`; the project ships no PP-OCR model).")] = None,
                   ) -> None:
    """Per engine, plate type and level: whole plate, registration, province, character accuracy (held-out
    fonts and backgrounds; --fonts validation: the validation fonts on training backgrounds); or, with
    --images/--labels, the same on your own labelled photos (--images with --draft-labels writes the reads as a
    labels file to check by hand first). --weights scores weights you trained."""
    from serve.plate.evaluate import (
        MIN_SCENE_SCALE,
        LabelsError,
        evaluate_images,
        evaluate_plates,
        images_markdown_table,
        markdown_table,
    )
    from serve.plate.evaluate import draft_labels as draft_labels_of  # the option is named draft_labels
    from serve.plate.fonts import FontsMissingError
    from serve.plate.model import WEIGHTS_FILE, ModelWeightsError
    from serve.plate.ocr import OCR_ENGINE_REGISTRY, OcrError
    from serve.plate.service import PlateService, PlateServiceConfig
    from serve.plate.train import expanded

    t0 = time.monotonic()
    if not MIN_SCENE_SCALE <= scene_scale <= 1:
        fail(f"--scene-scale {scene_scale}: give a factor from {MIN_SCENE_SCALE} (32 x 24 frames) to 1 (the 640 x 480 "
             "scenes as rendered); 0.5 reads 320 x 240 frames")
    names = tuple(dict.fromkeys(e.strip() for e in engines.split(",") if e.strip()))
    if not names:
        fail(f"--engines {engines!r} names no engine: give a comma-separated list such as model,tesseract")
    unknown = [e for e in names if e not in OCR_ENGINE_REGISTRY]
    if unknown:
        fail(f"--engines {engines!r}: unknown engine(s) {', '.join(unknown)}; the engines are "
             f"{', '.join(sorted(OCR_ENGINE_REGISTRY))}")
    if draft_labels is not None and (images is None or labels is not None):
        fail(f"--draft-labels {draft_labels} drafts a labels file for a folder of photos: give --images DIR and no "
             "--labels")
    if draft_labels is None and (images is None) != (labels is None):
        fail("give both --images DIR and --labels CSV (columns file,plate), or neither; to start the labels from "
             "the reader's reads, give --images DIR --draft-labels new.csv")
    if draft_labels is not None and "model" not in names:
        fail(f"--draft-labels reads with the model engine, which --engines {engines!r} leaves out: add model")
    if weights is not None and "model" not in names:
        fail(f"--weights {weights} is for the model engine, which --engines {engines!r} leaves out: add model")
    if paddle_model is not None and "paddle" not in names:
        fail(f"--paddle-model {paddle_model} is for the paddle engine, which --engines {engines!r} leaves out: "
             "add paddle")
    try:
        services = {} if weights is None else {"model": PlateService(PlateServiceConfig(
            engine="model", engine_options={"weights": str(expanded(weights, "--weights"))}))}
        if paddle_model is not None:
            services["paddle"] = PlateService(PlateServiceConfig(
                engine="paddle", engine_options={"model_dir": str(expanded(paddle_model, "--paddle-model"))}))
        if draft_labels is not None and images is not None:
            res = draft_labels_of(images, expanded(draft_labels, "--draft-labels"), services.get("model"),
                                  progress=_tty())
            res.update(_model_weights(("model",), weights or WEIGHTS_FILE))
            warn(f"wrote {res['draft_labels']}: {res['with_plate']} of {res['photos']} photo(s) have a plate as "
                 f"read, {res['to_fill_in']} an empty plate to fill in. Check every plate against its photo (the "
                 f"draft is the reader's guess; scoring it unchecked scores the reader against itself), then: ssz "
                 f"quality plates --images {shlex.quote(str(images))} --labels {shlex.quote(res['draft_labels'])}")
            emit_bench("quality-plates-draft", res, t0)
            return
        if images is not None and labels is not None:
            res = evaluate_images(images, labels, names, services=services, progress=_tty())
            res.update(_model_weights(names, weights or WEIGHTS_FILE))
            _warn_photo_errors(res, images)
            res["markdown"] = images_markdown_table(res)
            emit_bench("quality-plates-images", res, t0)
            return
        res = evaluate_plates(n=n, seed=seed, scenes=scenes, engines=names, services=services, fonts=fonts,
                              scene_scale=scene_scale)
        res.update(_model_weights(names, weights or WEIGHTS_FILE))
    except (LabelsError, ValueError, OcrError, ModelWeightsError, FontsMissingError) as e:  # an engine not installed
        fail(e)
    res["markdown"] = markdown_table(res)
    emit_bench("quality-plates", res, t0)


def _tty() -> bool:
    """Whether stderr is a terminal (progress bars only there: not in CI logs or a pipe)."""
    import sys

    return sys.stderr.isatty()


def _model_weights(names: tuple[str, ...], weights: Path) -> dict[str, Any]:
    """``{"model_weights": {"file", "sha256"}}``: which recogniser weights the model engine scored (the report
    names them, so two runs on different weights are told apart); empty when the model engine did not run."""
    from serve.plate.model import sha256_of
    from serve.plate.train import expanded

    if "model" not in names:
        return {}
    w = expanded(weights, "--weights")
    return {"model_weights": {"file": str(w), "sha256": sha256_of(w)}}


def _warn_photo_errors(res: dict[str, Any], images: Path) -> None:
    """Say on stderr which photos could not be read (also in the JSON's ``errors``), once per photo and error,
    and which photos of the folder no label names (the JSON's ``unlabelled``: not scored)."""
    unlabelled = res.get("unlabelled", [])
    if unlabelled:
        from serve.plate.evaluate import list_names

        warn(f"{len(unlabelled)} photo(s) in {images} have no row in the labels and are not scored: "
             f"{list_names(unlabelled)} (add a row file,plate for each to score it)")
    seen: dict[tuple[str, str], list[str]] = {}
    for name, r in res["engines"].items():
        for e in r.get("errors", []):
            seen.setdefault((e["file"], e["error"]), []).append(name)
    for (f, error), names in seen.items():
        warn(f"{images / f}: {error} (engine {', '.join(names)}; counted as a miss)")
