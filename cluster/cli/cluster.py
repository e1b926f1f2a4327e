"""``ssz cluster``: the Ray cluster (a local head on 127.0.0.1, or the one in ``SSZ_RAY_ADDRESS``)."""

from __future__ import annotations

from typing import Annotated

import typer

from cluster.cli.common import JsonOpt, emit, fail

app = typer.Typer(help="The Ray cluster (local head on 127.0.0.1, or SSZ_RAY_ADDRESS).", no_args_is_help=True)


@app.command("up")
def cluster_up(port: Annotated[int, typer.Option(help="GCS port of the head on 127.0.0.1.", min=1,
                                                 max=65535)] = 26379,
               num_cpus: Annotated[int | None, typer.Option(help="CPUs the head offers (default: all of this "
                                                                 "machine's).", min=1)] = None,
               num_gpus: Annotated[int | None, typer.Option(help="GPUs the head offers (default: those Ray "
                                                                 "finds).", min=0)] = None,
               as_json: JsonOpt = False) -> None:
    """Start a local Ray head bound to 127.0.0.1 (no-op when it already runs)."""
    from cluster import raycluster

    try:
        emit(raycluster.up(port=port, num_cpus=num_cpus, num_gpus=num_gpus), as_json)
    except raycluster.RayError as e:
        fail(e)


@app.command("down")
def cluster_down(as_json: JsonOpt = False) -> None:
    """Stop the local Ray head started by `ssz cluster up`."""
    from cluster import raycluster

    emit(raycluster.down(), as_json)


@app.command("status")
def cluster_status(address: Annotated[str | None, typer.Option(help="Ray address to inspect.")] = None,
                   as_json: JsonOpt = False) -> None:
    """Report the nodes and resources of the cluster in use."""
    from cluster import raycluster

    st = raycluster.status(address)
    emit(st, as_json)
    if not st.running:
        raise typer.Exit(1)
