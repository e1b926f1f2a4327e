"""``ssz demo``: the main job on the embedded default (see :mod:`cluster.demo`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cluster.cli.common import SIM_OPTIONS, USER_ERRORS, CityOpt, JsonOpt, console, err, fail


def demo_cmd(city: CityOpt = "hatyai",
             out: Annotated[str | None, typer.Option(help="Output folder (default: <state>/out/<city>).")] = None,
             face_cameras: Annotated[int, typer.Option(help="Zone CCTV cameras rendered and streamed live (the "
                                                            "rest of the city is ground truth only).")] = 4,
             plate_cameras: Annotated[int, typer.Option(help="Plate cameras rendered and streamed live.")] = 2,
             stream_s: Annotated[float, typer.Option(help="Simulated footage per rendered camera (s).")] = 60.0,
             seed: Annotated[int, typer.Option(help="Scenario seed.")] = 0,
             port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port of the API and the CCOC console "
                                                                    "when the demo deploys them (an API already "
                                                                    "running keeps its port).")] = 8000,
             quick: Annotated[bool, typer.Option(help="Only store, Ray, street graph and registry (no models, no "
                                                      "simulation).")] = False,
             serve: Annotated[bool | None, typer.Option(
                 "--serve/--no-serve", help="After the day, keep the CCOC console running (its URL and an operator "
                                            "token are printed) until Ctrl-C; default: when run in a terminal.")
             ] = None,
             as_json: JsonOpt = False) -> None:
    """The main job on the embedded default: store, local Ray, the city's twin, the recognition models, a
    simulated day streamed through the camera shards, its field inputs through the field-ingest API, alerts in
    the twin, a map, an evaluation and a summary; then (in a terminal, or with --serve) the CCOC console's URL
    and an operator token, the console running until Ctrl-C."""
    from cluster.demo import run_demo, serve_console

    try:
        summary = run_demo(city, out=out, console=err if as_json else console, quick=quick,
                           face_cameras=face_cameras, plate_cameras=plate_cameras, stream_s=stream_s, seed=seed,
                           port=port)
    except USER_ERRORS as e:
        fail(e, options=SIM_OPTIONS)
    if as_json:
        sys.stdout.write(summary.model_dump_json(indent=2) + "\n")
    if serve is None:
        serve = sys.stdin.isatty() and sys.stdout.isatty() and not as_json
    if serve and not quick:
        serve_console(summary, err if as_json else console)
