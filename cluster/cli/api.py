"""``ssz api``: face and plate recognition behind the token-protected HTTP API on Ray Serve."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cluster.cli.common import JsonOpt, console, emit, fail

app = typer.Typer(help="Face and plate recognition behind the token-protected HTTP API (Ray Serve).",
                  no_args_is_help=True)


@app.command("up")
def api_up(host: Annotated[str, typer.Option(help="Bind address; keep 127.0.0.1 unless behind a proxy.")] = "127.0.0.1",
           port: Annotated[int, typer.Option()] = 8000,
           max_batch_size: Annotated[int, typer.Option(help="Serve dynamic batch size.")] = 8,
           num_gpus: Annotated[float, typer.Option(help="GPUs per face replica (0 on CPU machines).")] = 0.0,
           as_json: JsonOpt = False) -> None:
    """Deploy the face, plate and API apps on the cluster (starting a local Ray head if none runs)."""
    from cluster import raycluster, serving

    try:
        if raycluster.known_address() is None:
            raycluster.up()
        raycluster.connect()
        emit(serving.up(host=host, port=port, max_batch_size=max_batch_size, num_gpus=num_gpus), as_json)
    except (raycluster.RayError, ValueError) as e:
        fail(e)


@app.command("down")
def api_down() -> None:
    """Remove the API application from the cluster (the cluster keeps running)."""
    from cluster import raycluster, serving

    if raycluster.known_address() is None:
        fail("no cluster recorded: nothing to take down")
    raycluster.connect()
    serving.down()
    console.print("api: removed")


@app.command("token")
def api_token(user: Annotated[str, typer.Option(help="User the token belongs to (audited as api:<user>).")] = "admin",
              rotate: Annotated[bool, typer.Option(help="Issue a new token for the user.")] = False) -> None:
    """Print a user's API token (created on first use; --rotate replaces it). Redeploy after rotating."""
    from cluster import serving

    toks = serving.add_user(user) if rotate or user not in serving.tokens() else serving.tokens()
    sys.stdout.write(toks[user] + "\n")
