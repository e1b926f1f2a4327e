"""``ssz config``: the bundled city configs (``cluster/cities/*.yaml``) or an operator's own YAML files, and
the JSON schema of what an operator writes (every field described, with its unit and range)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cluster import config as cfg
from cluster.cli.common import console, err, fail, print_json

app = typer.Typer(help="City and zone configurations.", no_args_is_help=True)


@app.command("list")
def config_list() -> None:
    """List the bundled cities with their camera counts."""
    t = Table("id", "station", "zone km²", "cameras", "plate cams", "graph")
    for cid in cfg.list_cities():
        c = cfg.load_city(cid)
        t.add_row(c.id, c.station_th, f"{c.zone.area_km2:g}", str(c.cameras.count), str(c.cameras.plate_count),
                  c.street_graph.kind)
    console.print(t)


@app.command("validate")
def config_validate(paths: Annotated[list[str], typer.Argument(help="City ids or YAML paths.")]) -> None:
    """Validate city configs; a bad file is reported with its field and the reason."""
    bad = 0
    for p in paths:
        try:
            c = cfg.load_city(p)
            console.print(f"[green]ok[/] {cfg.city_path(p)}: {c.id}, {c.camera_count} cameras")
        except cfg.ConfigError as e:
            bad += 1
            err.print(f"[red]invalid[/] {e}")
    if bad:
        raise typer.Exit(1)


@app.command("show")
def config_show(city: str) -> None:
    """Print a city's validated configuration as JSON."""
    try:
        console.print_json(json.dumps(cfg.load_city(city).model_dump(mode="json"), ensure_ascii=False))
    except cfg.ConfigError as e:
        fail(e)


def operator_models() -> dict[str, type]:
    """The models whose fields operators write, by the name ``ssz config schema`` takes."""
    from actors.alerts import AlertSinkConfig

    return {"city": cfg.CityConfig, "alert-sink": AlertSinkConfig}


@app.command("schema")
def config_schema(model: Annotated[str, typer.Argument(help="city (a city YAML) or alert-sink.")] = "city") -> None:
    """Print the JSON schema of a city YAML (or of the alert sink's settings): every field, its description,
    unit, range and default."""
    models = operator_models()
    if model not in models:
        fail(f"unknown model {model!r}: choose one of {', '.join(models)}")
    print_json(models[model].model_json_schema())
