"""``ssz api``: face and plate recognition behind the token-protected HTTP API on Ray Serve."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cluster.cli.common import JsonOpt, connect_ray, console, emit, err, fail, require_verified_audits
from twin.objectstore import StoreError

app = typer.Typer(help="Face and plate recognition behind the token-protected HTTP API (Ray Serve).",
                  no_args_is_help=True)


@app.command("up")
def api_up(host: Annotated[str, typer.Option(help="Bind address; keep 127.0.0.1 unless behind a proxy.")] = "127.0.0.1",
           port: Annotated[int, typer.Option(help="HTTP port of the API and the console (an API already "
                                                  "running keeps its port).", min=1, max=65535)] = 8000,
           max_batch_size: Annotated[int, typer.Option(help="Serve dynamic batch size.")] = 8,
           num_gpus: Annotated[float, typer.Option(help="GPUs per face replica (0 on CPU machines).")] = 0.0,
           city: Annotated[str, typer.Option(help="The city whose command room (alerts, field ingest, the console "
                                                  "at /console) the API serves.")] = "hatyai",
           as_json: JsonOpt = False) -> None:
    """Deploy the face, plate and API apps on the cluster (starting the store and a local Ray head if none
    runs), after `ssz audit verify` passes."""
    from cluster import raycluster, serving, store

    try:
        store.up()
        require_verified_audits()
        if raycluster.known_address() is None:
            raycluster.up()
        raycluster.connect()
        emit(serving.up(host=host, port=port, max_batch_size=max_batch_size, num_gpus=num_gpus, city=city), as_json)
    except (raycluster.RayError, StoreError, ValueError) as e:
        fail(e)


@app.command("down")
def api_down() -> None:
    """Remove the API application from the cluster (the cluster keeps running); a no-op when it is not deployed."""
    from cluster import raycluster, serving

    if raycluster.known_address() is None:
        console.print("api: not running (no cluster recorded)")
        return
    connect_ray()
    console.print("api: removed" if serving.down() else "api: not running")


@app.command("token")
def api_token(user: Annotated[str, typer.Option(help="User the token belongs to (audited as api:<user>).")],
              role: Annotated[str | None, typer.Option(
                  help="admin | supervisor | operator | analyst | device (needed unless --revoke).")] = None,
              revoke: Annotated[bool, typer.Option(help="Revoke the user's token instead.")] = False,
              reason: Annotated[str, typer.Option(help="Why (audited), with --revoke.")] = "") -> None:
    """Issue (or rotate) a user's API token with a role and print it once; the old token stops working within
    seconds, no redeploy. Only a keyed hash is stored. --revoke removes the user's token."""
    from cluster import serving, store
    from serve.auth import AuthError

    try:
        store.up()
        if revoke:
            serving.revoke_token(user, reason)
            err.print(f"revoked the token of {user}")
            return
        if role is None:
            fail("give --role admin|supervisor|operator|analyst|device (or --revoke)")
        sys.stdout.write(serving.issue_token(user, role) + "\n")
    except (AuthError, StoreError, ValueError, LookupError) as e:
        fail(e)
