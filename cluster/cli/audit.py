"""``ssz audit``: verify the audit logs against the locked mirror, restore a tampered one from it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer
from rich.markup import escape

from cluster.cli.common import console, fail

app = typer.Typer(help="The audit logs (watchlist, hotlist, users, alerts) and their locked mirror.",
                  no_args_is_help=True)


@app.command("verify")
def verify(as_json: Annotated[bool, typer.Option("--json", help="Print JSON reports.")] = False) -> None:
    """Check every audit log (keyed chain, locked mirror, anchors; a torn tail is repaired); exit 1 if any
    log does not verify, naming its first bad event."""
    import json

    from cluster import audits, store
    from twin.objectstore import StoreError

    try:
        reports = audits.verify_all(store.open_store())
    except StoreError as e:
        fail(e)
    if as_json:
        sys.stdout.write(json.dumps([r.model_dump() | {"ok": r.ok} for r in reports], indent=2) + "\n")
    for r in reports if not as_json else []:
        state = "[green]ok[/]" if r.ok else f"[red]TAMPERED at event {r.first_bad_seq}[/]"
        torn = f", torn tail of {r.torn_bytes_repaired} bytes repaired" if r.torn_bytes_repaired else ""
        console.print(f"{r.name}: {state} ({r.events} events, {r.mirrored} mirrored, {r.anchors} anchors{torn})")
        for p in r.problems[:5]:
            console.print(f"  - {escape(str(p))}")
    if not reports and not as_json:
        console.print("no audit logs yet")
    if any(not r.ok for r in reports):
        raise typer.Exit(1)


@app.command("restore")
def restore(name: Annotated[str, typer.Argument(help="Log name as `ssz audit verify` prints it.")]) -> None:
    """Rebuild a local audit log from its locked mirror (the damaged file is kept beside it)."""
    from cluster import audits, store
    from serve.audit import AuditError

    logs = {log.name: log for log in audits.known_logs(store.open_store())}
    if name not in logs:
        fail(f"no audit log {name!r}; known: {', '.join(sorted(logs)) or 'none'}")
    try:
        kept = logs[name].restore_from_mirror()
    except AuditError as e:
        fail(e)
    console.print(f"{name}: restored {logs[name].check().events} events from the locked mirror"
                  + (f"; the damaged file is kept as {kept}" if kept else ""))


@app.command("evidence")
def evidence(
    prefix: Annotated[str, typer.Option(help="Check only keys under this prefix, e.g. alerts/hatyai/.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print each rewritten key as one JSON line (JSON Lines); "
                                                         "an error as a JSON line {\"error\": ...} too.")] = False,
) -> None:
    """List every key of the evidence bucket written more than once or deleted (more than one version or a
    delete marker), with its versions and times, as tampering, each as the listing finds it; exit 1 if there
    is one, 2 if the store cannot be read. The platform serves the version the record keeps (the first); a
    plain S3 GET returns the newest. The hotlist copies, rewritten by design, are left out (`ssz audit lists`
    checks them)."""
    from cluster import store
    from twin.evidence import rewritten
    from twin.objectstore import StoreError

    _report(lambda: rewritten(store.open_store(), prefix), "TAMPERED", as_json, (StoreError,),
            f"evidence{f' under {escape(prefix)}' if prefix else ''}: ok (every key written once)")


@app.command("lists")
def lists(
    prefix: Annotated[str, typer.Option(help="Check only keys under this prefix, e.g. hotlist/ or watchlist/sim-.")
                      ] = "",
    as_json: Annotated[bool, typer.Option("--json", help=(
        "Print each unaudited version as one JSON line (JSON Lines); an error as a JSON line {\"error\": ...} "
        "too."))] = False,
) -> None:
    """Check every version of the hotlist copies (evidence bucket) and watchlist copies (models bucket): each must
    hold a list state an audited change recorded (its SHA-256 is in the change's audit event), and the current
    version the latest one. List the others (and delete markers) with their version id and time, and for a
    current version put back to an earlier state, the version to copy back; exit 1 if there is one, 2 if the
    store or a log cannot be read. `ssz audit evidence` leaves these copies out: they are rewritten by design."""
    from cluster import audits, store
    from serve.audit import AuditError
    from twin.objectstore import StoreError

    _report(lambda: audits.unaudited_list_versions(store.open_store(), prefix), "UNAUDITED", as_json,
            (StoreError, AuditError, ValueError),
            "hotlist and watchlist copies: ok (every version holds an audited state)",
            explain=lambda e: f"{e} (run `ssz audit verify`)" if isinstance(e, AuditError) else e)


def _report(findings: Callable[[], Iterable[Any]], label: str, as_json: bool, errors: tuple[type[Exception], ...],
            ok: str, explain: Callable[[Exception], str | Exception] = lambda e: e) -> None:
    """Print each finding as the listing yields it (``label`` and its ``describe()``, or one JSON line with
    ``--json``), ``ok`` when there is none; exit 1 when there is one, 2 on one of ``errors`` (also a JSON line
    ``{"error", "found_before"}`` with ``--json``; the message as ``explain`` words it): the one output of
    `ssz audit evidence` and `ssz audit lists`."""
    import json

    found = 0
    try:
        for f in findings():
            found += 1
            if as_json:
                sys.stdout.write(f.model_dump_json() + "\n")
                sys.stdout.flush()
            else:
                console.print(f"[red]{label}[/] {escape(f.describe())}")
    except errors as e:
        if as_json:
            sys.stdout.write(json.dumps({"error": str(e), "found_before": found}) + "\n")
        fail(explain(e))
    if not found and not as_json:
        console.print(ok)
    if found:
        raise typer.Exit(1)
