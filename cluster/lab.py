"""``ssz lab``: JupyterLab from the project's environment, on 127.0.0.1 with a token, the analyst's own copies of
the notebooks open (:mod:`cluster.notebookcopies`: ``$SSZ_HOME/notebooks`` by default, never the repository's).

The project's kernel (``ssz``, this interpreter) is registered in the environment's own prefix (never the
user's home); the kepler.gl widget's JavaScript comes from the installed ``keplergl`` wheel through the kernel
(:class:`twin.kepler_offline.OfflineKeplerGl`), so maps render with no internet. JupyterLab's own calls out
(news, update checks, the PyPI extension manager) are switched off. Lab state (settings, workspaces, runtime
files) lives in ``$SSZ_HOME/lab``. A city chosen for the lab reaches the notebooks as ``$SSZ_CITY`` in the kernels'
environment (:func:`cluster.config.chosen_city` reads it).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cluster import notebookcopies
from cluster.config import CITIES_DIR, CITY_ENV, ConfigError, city_path, load_city
from cluster.state import state_dir
from serve.keys import write_private

KERNEL_NAME = "ssz"
KERNEL_DISPLAY = "Smart Safety Zone (Python 3.11)"
# User settings the lab starts with: the notebook's kernel starts by itself; no news or update checks.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


class LabError(RuntimeError):
    """JupyterLab cannot start; the message says why and what to do."""


def ensure_kernel(prefix: str = sys.prefix) -> Path:
    """Register this interpreter as the ``ssz`` Jupyter kernel under ``prefix`` (idempotent); its folder."""
    from ipykernel.kernelspec import install

    spec = Path(prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME / "kernel.json"
    if spec.exists():
        try:
            if json.loads(spec.read_text())["argv"][0] == sys.executable:
                return spec.parent
        except (ValueError, KeyError, IndexError):
            pass
    return Path(install(prefix=prefix, kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY))


def _settings_dir() -> Path:
    d = state_dir("lab") / "user-settings"
    for name, values in SETTINGS.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        current = json.loads(p.read_text()) if p.exists() else {}
        if any(current.get(k) != v for k, v in values.items()):
            p.write_text(json.dumps({**current, **values}, indent=2))
    return d


@dataclass
class LabServer:
    """A running JupyterLab: its process, URL (with token), log file and what :func:`start` did to the notebook
    copies it opens (``None`` for a lab stopped while it started)."""

    process: subprocess.Popen[bytes]
    url: str
    token: str
    log: Path
    copies: notebookcopies.CopyReport | None = None


def config_file(port: int) -> Path:
    """``<state>/lab/lab-<port>-config.json``: the lab's token (``IdentityProvider.token``), owner-only (0600)."""
    return state_dir("lab") / f"lab-{port}-config.json"


def command(port: int, notebooks: Path, expose_app: bool = False) -> list[str]:
    """The ``jupyter lab`` command line ``ssz lab`` runs. It holds no token: any local user can read a command
    line (``ps``), so :func:`start` writes it to an owner-only config file (:func:`config_file`) named here.
    ``--config`` takes the place of the user's own ``jupyter_server_config`` (a token or no token set there
    would win over ours); ``jupyter_config`` files are still read."""
    lab = state_dir("lab")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", f"--config={config_file(port)}", f"--ServerApp.root_dir={notebooks}",
           f"--LabApp.user_settings_dir={_settings_dir()}", f"--LabApp.workspaces_dir={lab / 'workspaces'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=",
           "--LabApp.extension_manager=readonly", f"--MultiKernelManager.default_kernel_name={KERNEL_NAME}"]
    if expose_app:
        cmd.append("--LabApp.expose_app_in_browser=True")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root; the server still binds 127.0.0.1 only
    return cmd


def city_for_kernels(city: str) -> str:
    """``city`` as the lab's kernels get it in ``$SSZ_CITY``: a bundled city id as it is, a city YAML as an
    absolute path (kernels start in the notebooks' folder). Raises :class:`LabError` for an unknown city (naming
    the bundled ones) or a YAML that does not load."""
    try:
        load_city(city)
    except ConfigError as e:
        raise LabError(f"--city {city}: {e}") from None
    path = city_path(city)
    return city if path.stem == city and path.parent == CITIES_DIR else str(path.resolve())


def start(port: int = 8888, token: str | None = None, notebooks: Path | None = None, expose_app: bool = False,
          wait_s: float = 120.0, city: str | None = None) -> LabServer:
    """Start JupyterLab in the background and wait until it answers; raises :class:`LabError` if it cannot.

    Parameters
    ----------
    port
        Port on 127.0.0.1 (not retried: a taken port is an error).
    token
        Access token; default ``$SSZ_LAB_TOKEN`` or a new random one.
    notebooks
        The folder the lab opens, made and brought up to date with the shipped notebooks first
        (:func:`cluster.notebookcopies.working_copies`); default ``$SSZ_HOME/notebooks``.
    expose_app
        Expose ``window.jupyterapp`` (for browser automation such as the project's browser test).
    city
        A bundled city id or city YAML every notebook works on (``$SSZ_CITY`` in the kernels' environment);
        ``None``: each notebook's own city.
    """
    import socket
    import time

    city_env = city_for_kernels(city) if city is not None else None
    token = token or os.environ.get("SSZ_LAB_TOKEN") or secrets.token_hex(24)
    lab = state_dir("lab")
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise LabError(_port_taken(port, lab / "runtime"))
    try:  # after the port check: a lab already running keeps its files as they are
        copies = notebookcopies.working_copies(notebooks if notebooks is not None else state_dir("notebooks"))
    except notebookcopies.NotebookCopyError as e:
        raise LabError(str(e)) from None
    ensure_kernel()
    # in an owner-only file, never on the command line (ps) nor in the environment (every kernel and what it
    # starts inherits it); a token in the user's own config does not win over it
    write_private(config_file(port), json.dumps({"IdentityProvider": {"token": token}}).encode())
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE")}
    env |= {"JUPYTER_RUNTIME_DIR": str(lab / "runtime"), "JUPYTER_PLATFORM_DIRS": "1"}
    env.pop(CITY_ENV, None)  # --city is the one way to choose it: without it each notebook uses its own city
    if city_env is not None:
        env[CITY_ENV] = city_env
    log = lab / f"lab-{port}.log"
    proc = subprocess.Popen(command(port, copies.folder, expose_app), stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < wait_s:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise LabError(f"JupyterLab exited with code {proc.returncode}; its log ({log}) ends:\n{tail}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return LabServer(proc, f"http://127.0.0.1:{port}/lab?token={token}", token, log, copies)
            time.sleep(0.3)
    except BaseException:  # Ctrl-C, SIGTERM or SIGHUP while it starts: it runs in its own session, stop it
        stop(LabServer(proc, "", token, log))
        raise
    stop(LabServer(proc, "", token, log))
    raise LabError(f"JupyterLab did not answer on 127.0.0.1:{port} within {wait_s:.0f} s; see {log}")


def _port_taken(port: int, runtime: Path) -> str:
    """What to do about a taken port: an ``ssz lab`` of this state folder already on it is named, with its URL."""
    from jupyter_server.serverapp import list_running_servers

    mine = [s for s in list_running_servers(str(runtime)) if s.get("port") == port]
    if mine:
        pid, url = mine[0].get("pid"), f"http://127.0.0.1:{port}/lab?token={mine[0].get('token', '')}"
        return (f"ssz lab already runs on port {port} (pid {pid}): open {url} , or stop it (Ctrl-C where it "
                f"runs, or kill {pid}); or pass --port with a free port")
    return f"port {port} on 127.0.0.1 is in use by another program: pass --port with a free port"


def stop(server: LabServer, timeout_s: float = 20.0) -> None:
    """Stop a lab started by :func:`start` (its kernels too): SIGTERM, and after ``timeout_s`` seconds SIGKILL to
    its whole process group (the server and every kernel it started)."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout_s)
        except subprocess.TimeoutExpired:  # the whole group: the lab leads it (own session), kernels included
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
