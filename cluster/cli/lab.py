"""``ssz lab``: start JupyterLab for analysts (see :mod:`cluster.lab`)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from cluster import lab
from cluster.cli.common import fail


def lab_cmd(
        port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8888,
        token: Annotated[str | None, typer.Option(
            help="Access token (default $SSZ_LAB_TOKEN or a new one); other local users see a command line (ps): "
                 "prefer $SSZ_LAB_TOKEN.")] = None,
        notebooks: Annotated[Path, typer.Option("--dir", help="Folder to open.")] = lab.NOTEBOOKS,
        expose_app: Annotated[bool, typer.Option(help="Expose window.jupyterapp for browser automation.")] = False,
) -> None:
    """JupyterLab on 127.0.0.1 with a token, the project's kernel and the notebooks; Ctrl-C stops it."""
    try:
        server = lab.start(port, token, notebooks.resolve(), expose_app)
    except lab.LabError as e:
        fail(e)

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # set before the URL is printed: whoever reads it may stop the lab at once
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop also stops the lab and its kernels
    if hasattr(signal, "SIGHUP"):  # a closed terminal too: the lab runs in its own session and would live on
        signal.signal(signal.SIGHUP, _interrupt)
    try:
        print(f"JupyterLab: {server.url}", flush=True)
        print(f"kernel: {lab.KERNEL_DISPLAY} ({sys.executable}); notebooks: {notebooks.resolve()}; log: {server.log}",
              flush=True)
        print("Ctrl-C stops it.", flush=True)
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop(server)
