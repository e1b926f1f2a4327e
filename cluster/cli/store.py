"""``ssz store``: the S3 object store (embedded SeaweedFS on 127.0.0.1, or ``SSZ_S3_*`` for MinIO)."""

from __future__ import annotations

from typing import Annotated

import typer

from cluster.cli.common import JsonOpt, emit, fail
from twin.objectstore import StoreError

app = typer.Typer(help="The S3 object store (embedded SeaweedFS on 127.0.0.1, or SSZ_S3_* for MinIO).",
                  no_args_is_help=True)


@app.command("up")
def store_up(port: Annotated[int | None, typer.Option(help="S3 port (others follow it).")] = None,
             retention_days: Annotated[int | None, typer.Option(
                 help="Evidence COMPLIANCE retention in days (default SSZ_EVIDENCE_RETENTION_DAYS or 365); an "
                      "existing longer retention is never lowered.")] = None,
             as_json: JsonOpt = False) -> None:
    """Start the embedded S3 store on 127.0.0.1 and create the twin/evidence/models buckets."""
    from cluster import store

    try:
        emit(store.up(port=port, evidence_retention_days=retention_days), as_json)
    except StoreError as e:
        fail(e)


@app.command("down")
def store_down(as_json: JsonOpt = False) -> None:
    """Stop the embedded S3 store (its data stays in the state folder)."""
    from cluster import store

    emit(store.down(), as_json)


@app.command("status")
def store_status(as_json: JsonOpt = False) -> None:
    """Report the store: endpoint, process, buckets with versioning and object lock."""
    from cluster import store

    try:
        st = store.status()
    except StoreError as e:
        fail(e)
    emit(st, as_json)
    if st.error:
        raise typer.Exit(1)
