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
        notebooks: Annotated[Path | None, typer.Option(
            "--notebook-dir", "--dir",
            help="Your notebook folder, made if missing (default $SSZ_HOME/notebooks): the shipped notebooks are "
                 "copied into it and the lab opens the copies. A copy you changed is never overwritten: when the "
                 "shipped version changes, it is written beside yours as NAME.new.ipynb and ssz lab says so; a "
                 "copy you never changed follows the shipped version.")] = None,
        city: Annotated[str | None, typer.Option(
            help="Bundled city id (or city YAML) every notebook works on (default: each notebook's own city); "
                 "the notebooks read it from $SSZ_CITY.")] = None,
        expose_app: Annotated[bool, typer.Option(help="Expose window.jupyterapp for browser automation.")] = False,
) -> None:
    """JupyterLab on 127.0.0.1 with a token, the project's kernel and your own copies of the notebooks; Ctrl-C
    stops it."""
    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # set before the lab starts: stopped while it starts (up to 2 min) or right after the URL is printed, ssz lab
    # stops it; it runs in its own session and would live on, holding the port and token
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop also stops the lab and its kernels
    if hasattr(signal, "SIGHUP"):  # a closed terminal too
        signal.signal(signal.SIGHUP, _interrupt)
    try:
        # stops what it started when interrupted
        server = lab.start(port, token, notebooks, expose_app, city=city)
    except lab.LabError as e:
        fail(e)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    try:
        print(f"JupyterLab: {server.url}", flush=True)
        copies = server.copies
        assert copies is not None  # a started lab made them
        said = ["your copies of the shipped ones"]
        if copies.copied:
            said.append(f"{len(copies.copied)} copied in")
        if copies.updated:
            said.append(f"updated to the shipped version: {', '.join(copies.updated)}")
        print(f"kernel: {lab.KERNEL_DISPLAY} ({sys.executable}); log: {server.log}", flush=True)
        print(f"notebooks: {copies.folder} ({'; '.join(said)}); "
              f"city: {city or 'each notebook its own (--city NAME picks one)'}", flush=True)
        for notice in copies.notices:
            print(f"note: {notice}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop(server)
