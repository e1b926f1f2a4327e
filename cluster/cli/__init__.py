"""The ``ssz`` command line: one thin module per command group, wired here into :data:`app`.

Commands parse options, call the domain modules (``cluster.demo``, ``cluster.citytwin``, ``cluster.citymap``,
``cluster.planning``, ``cluster.pipeline``, ``cluster.sim``, ``cluster.store`` ...) and print; what they share
(the consoles, ``--json``, ``--city``, :func:`~cluster.cli.common.fail`) is in :mod:`cluster.cli.common`.
Only this package ends the process.
"""

from __future__ import annotations

import typer

from cluster.cli import api, audit, bench, config, demo, lab, plan, quality, run, store, train, twin
from cluster.cli import cluster as cluster_group
from cluster.cli import eval as eval_group

app = typer.Typer(help="Smart Safety Zone platform.", no_args_is_help=True, add_completion=False)
app.add_typer(store.app, name="store")
app.add_typer(cluster_group.app, name="cluster")
app.add_typer(config.app, name="config")
app.add_typer(api.app, name="api")
app.command("run")(run.run_cmd)
app.command("status")(run.status_cmd)
app.command("demo")(demo.demo_cmd)
app.command("eval")(eval_group.eval_cmd)
app.add_typer(twin.app, name="twin")
app.add_typer(plan.app, name="plan")
app.add_typer(bench.app, name="bench")
app.add_typer(quality.app, name="quality")
app.add_typer(audit.app, name="audit")
app.add_typer(train.app, name="train")
app.command("lab")(lab.lab_cmd)


@app.callback()
def _setup() -> None:
    """Smart Safety Zone platform."""
    import logging

    from cluster.cli.common import fail
    from serve.redact import install_log_redaction
    from serve.state import StateHomeError, ssz_home

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # connection retries while a server starts are expected
    install_log_redaction()  # no URL credentials in any log line of any command
    try:  # every command reads or writes the state folder: a bad SSZ_HOME is said once, here, not as a traceback
        ssz_home()
    except StateHomeError as e:
        fail(e)

if __name__ == "__main__":
    app()
