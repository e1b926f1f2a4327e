"""What every ``ssz`` command shares: the consoles, the ``--json`` and ``--city`` options, one way to fail and
one way to print a result.

Only this package ends the process: domain modules raise typed errors (:data:`USER_ERRORS`), and a command
turns them into :func:`fail` (the message on stderr, exit code 2, never a traceback).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape

from cluster.config import ConfigError, explain_validation
from cluster.raycluster import RayError
from serve.errors import error_text
from twin.objectstore import StoreError

console = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
CityOpt = Annotated[str, typer.Option("--city", help="Bundled city id or path to a city YAML.")]

# Errors a command reports as "error: <message>" with exit code 2: bad input or a service that is not there.
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, StoreError, RayError, ValidationError, ValueError,
                                             FileNotFoundError)


SIM_OPTIONS = {"face_cameras": "--face-cameras", "plate_cameras": "--plate-cameras", "stream_s": "--stream-s"}
"""The options of ``ssz eval`` / ``ssz demo`` that set a :class:`~cluster.sim.city.SimConfig` field (for
:func:`fail`)."""


def fail(msg: str | Exception, code: int = 2, *, options: Mapping[str, str] | None = None) -> NoReturn:
    """Print what is wrong (a pydantic error as field: reason, or as --option: reason for the fields in
    ``options``, which maps a field to the option that set it) on stderr and exit with ``code``."""
    if isinstance(msg, ValidationError):
        msg = explain_validation(msg, options)
    text = error_text(msg) if isinstance(msg, BaseException) else msg  # a KeyError's own text, not its repr
    err.print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True)
    raise typer.Exit(code)


def connect_ray() -> str:
    """:func:`cluster.raycluster.connect` for a command: a cluster that cannot be joined or started is
    :func:`fail` (an error line, exit code 2), never a traceback. Returns what was joined."""
    from cluster import raycluster

    try:
        return raycluster.connect()
    except RayError as e:
        fail(e)


def warn(msg: str) -> None:
    """Say on stderr what the command noticed and handled (a fixed swap, rows left out), without stopping."""
    err.print(f"[yellow]warning:[/] {escape(msg)}", soft_wrap=True)


def require_verified_audits() -> None:
    """Refuse to start (fail) when an audit log does not verify against its locked mirror (a torn tail is
    repaired first)."""
    from cluster import audits, store

    try:
        audits.require_verified(store.open_store())
    except audits.AuditTampered as e:
        fail(e)


# The real stdout, set aside by reserve_stdout() for the one JSON document (None: stdout is not reserved).
_json_fd: int | None = None


def reserve_stdout() -> None:
    """Keep stdout for the command's JSON document alone: from now on, for the rest of the process, file
    descriptor 1 points at stderr, so whatever else writes to stdout — Ray's driver and its atexit hooks, C++
    libraries, child processes (Ray daemons, servers) that inherit it, stray prints — lands on stderr, and
    :func:`write_stdout` writes the document to the real stdout. Idempotent."""
    global _json_fd
    if _json_fd is not None:
        return
    sys.stdout.flush()
    _json_fd = os.dup(1)
    os.dup2(2, 1)


def write_stdout(text: str) -> None:
    """Write ``text`` to the real stdout (the one :func:`reserve_stdout` set aside, else ``sys.stdout``)."""
    if _json_fd is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    data = text.encode()
    while data:
        data = data[os.write(_json_fd, data):]


def emit(model: BaseModel, as_json: bool) -> None:
    """A result model: plain JSON on stdout with ``--json``, else pretty-printed JSON."""
    if as_json:
        write_stdout(model.model_dump_json(indent=2) + "\n")
    else:
        console.print_json(model.model_dump_json())


def print_json(obj: Any) -> None:
    """A JSON document on stdout (Thai text kept readable; dates and paths as strings)."""
    write_stdout(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
