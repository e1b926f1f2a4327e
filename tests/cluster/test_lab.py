"""``ssz lab`` set-up without a browser: the kernel registration, the command line, a taken port."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster import lab
from cluster.cli import app
from cluster.notebookcopies import SHIPPED


def test_kernel_is_registered_in_the_given_prefix_once(tmp_path: Path) -> None:
    d = lab.ensure_kernel(prefix=str(tmp_path))
    spec = json.loads((d / "kernel.json").read_text())
    assert d == tmp_path / "share" / "jupyter" / "kernels" / lab.KERNEL_NAME
    assert spec["argv"][0] == sys.executable and spec["display_name"] == lab.KERNEL_DISPLAY
    mtime = (d / "kernel.json").stat().st_mtime_ns
    assert lab.ensure_kernel(prefix=str(tmp_path)) == d and (d / "kernel.json").stat().st_mtime_ns == mtime


def test_command_binds_loopback_with_token_and_no_calls_out(tmp_path: Path) -> None:
    cmd = lab.command(8899, tmp_path)
    assert "--ip=127.0.0.1" in cmd and "--port-retries=0" in cmd
    assert "--LabApp.extension_manager=readonly" in cmd and f"--ServerApp.root_dir={tmp_path}" in cmd
    settings = next(c for c in cmd if c.startswith("--LabApp.user_settings_dir=")).split("=", 1)[1]
    tracker = Path(settings) / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings"
    assert json.loads(tracker.read_text())["autoStartDefaultKernel"] is True


def test_token_is_not_on_the_command_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # any local user reads another's command line (ps, /proc/PID/cmdline): the token goes in the environment
    seen: dict[str, object] = {}

    def popen(cmd: list[str], **kw: object) -> object:
        seen.update(cmd=cmd, env=kw["env"])
        raise RuntimeError("not started in this test")

    monkeypatch.setattr(lab.subprocess, "Popen", popen)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RuntimeError, match="not started"):
        lab.start(port, "s3cret-token-1234", tmp_path)
    assert not any("s3cret-token-1234" in a for a in seen["cmd"])  # type: ignore[attr-defined]
    assert "JUPYTER_TOKEN" not in seen["env"]  # type: ignore[operator]  # kernels inherit the environment
    cfg = lab.config_file(port)
    assert f"--config={cfg}" in seen["cmd"]  # type: ignore[operator]
    assert json.loads(cfg.read_text()) == {"IdentityProvider": {"token": "s3cret-token-1234"}}
    assert cfg.stat().st_mode & 0o777 == 0o600


def test_the_kernels_get_the_city_of_city_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # without --city every notebook uses its own city, whatever the shell exports; a city YAML goes absolute
    # (the kernels start in the notebook folder)
    from cluster.config import CITIES_DIR, CITY_ENV

    seen: list[dict[str, str]] = []

    def popen(cmd: list[str], **kw: dict[str, str]) -> object:
        seen.append(kw["env"])
        raise RuntimeError("not started in this test")

    monkeypatch.setattr(lab.subprocess, "Popen", popen)
    monkeypatch.setenv(CITY_ENV, "sukhothai")
    monkeypatch.chdir(CITIES_DIR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for city in (None, "betong", "chiangmai.yaml"):
        with pytest.raises(RuntimeError, match="not started"):
            lab.start(port, "tok", tmp_path, city=city)
    assert [e.get(CITY_ENV) for e in seen] == [None, "betong", str(CITIES_DIR / "chiangmai.yaml")]


def _stand_in_lab(monkeypatch: pytest.MonkeyPatch, script: str) -> tuple[int, list[object]]:
    """``lab.start`` runs ``script`` (which never answers on the port) instead of JupyterLab; a free port."""
    started: list[object] = []
    popen = lab.subprocess.Popen

    def record(*a: object, **kw: object) -> object:
        started.append(popen(*a, **kw))  # type: ignore[call-overload]
        return started[-1]

    monkeypatch.setattr(lab, "command", lambda *a, **kw: [sys.executable, "-c", script])
    monkeypatch.setattr(lab.subprocess, "Popen", record)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1], started


def test_interrupted_while_it_starts_the_lab_is_stopped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import time

    port, started = _stand_in_lab(monkeypatch, "import time; time.sleep(60)")

    real_sleep, calls = time.sleep, []

    def interrupt(s: float) -> None:
        calls.append(s)
        if len(calls) == 1:  # Ctrl-C, or the SIGHUP/SIGTERM handler of ssz lab, during the start-up wait
            raise KeyboardInterrupt
        real_sleep(s)  # Popen.wait(timeout) sleeps too

    monkeypatch.setattr(time, "sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        lab.start(port, "tok", tmp_path)
    assert started and started[0].poll() is not None  # type: ignore[attr-defined]


def test_every_notebook_opens_with_the_project_kernel() -> None:
    # a notebook saved with "python3" opens with whatever kernel of that name the user has (e.g. a system
    # Python without the project), not the kernel ssz lab registers
    import nbformat

    names = {p.name: nbformat.read(p, as_version=4).metadata.get("kernelspec", {}).get("name")
             for p in sorted(SHIPPED.glob("*.ipynb"))}
    assert names and {n for n, k in names.items() if k != lab.KERNEL_NAME} == set()


def test_taken_port_unknown_city_and_unusable_folder_exit_2(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = CliRunner().invoke(app, ["lab", "--port", str(port)])
    assert r.exit_code == 2 and f"port {port} on 127.0.0.1 is in use" in r.output
    # a lab of this state folder on that port (its runtime file, a live pid): said so, with its URL
    runtime = lab.state_dir("lab") / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    info = runtime / "jpserver-test.json"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        info.write_text(json.dumps({"pid": os.getpid(), "port": port, "token": "feed42"}))
        try:
            r = CliRunner().invoke(app, ["lab", "--port", str(port)])
        finally:
            info.unlink()
    assert r.exit_code == 2 and f"ssz lab already runs on port {port} (pid {os.getpid()})" in r.output
    assert f"http://127.0.0.1:{port}/lab?token=feed42" in r.output
    (tmp_path / "a-file").write_text("")
    r = CliRunner().invoke(app, ["lab", "--notebook-dir", str(tmp_path / "a-file")])
    assert r.exit_code == 2 and "is a file, not a folder" in r.output
    r = CliRunner().invoke(app, ["lab", "--dir", str(SHIPPED)])  # saving there dirties the checkout
    assert r.exit_code == 2 and "is the project's own notebooks folder" in r.output
    r = CliRunner().invoke(app, ["lab", "--city", "nowhere", "--notebook-dir", str(tmp_path / "nb")])
    assert r.exit_code == 2 and "--city nowhere: unknown city 'nowhere': bundled cities are betong, chiangmai, " \
        "hatyai, sukhothai" in r.output
    assert not (tmp_path / "nb").exists()  # refused before anything is made


@pytest.mark.services  # starts a real JupyterLab
def test_closing_the_terminal_while_the_lab_starts_stops_it() -> None:
    import signal
    import subprocess
    import time

    from cluster.state import state_dir

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = state_dir("lab") / f"lab-{port}.log"  # made when JupyterLab is started
    log.unlink(missing_ok=True)
    ssz = Path(sys.executable).with_name("ssz")
    proc = subprocess.Popen([str(ssz), "lab", "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not log.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "ssz lab did not start JupyterLab"
            time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)  # before it answers: the terminal closed during the start
        proc.wait(30)
        deadline = time.monotonic() + 15  # long enough for a JupyterLab left behind to bind its port
        while time.monotonic() < deadline:
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0, "JupyterLab outlived ssz lab's start"
            time.sleep(0.3)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.services  # starts a real JupyterLab
def test_closing_the_terminal_stops_the_lab(tmp_path: Path) -> None:
    import os
    import re
    import signal
    import subprocess
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ssz = Path(sys.executable).with_name("ssz")
    proc = subprocess.Popen([str(ssz), "lab", "--port", str(port)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert re.match(rf"JupyterLab: http://127\.0\.0\.1:{port}/lab\?token=", line), line
        proc.stdout.readline()  # type: ignore[union-attr]  # the kernel and log
        line = proc.stdout.readline()  # type: ignore[union-attr]
        home = lab.state_dir("notebooks")  # the default: $SSZ_HOME/notebooks, never the checkout's
        assert line.startswith(f"notebooks: {home} (your copies of the shipped ones") and line.endswith(
            "city: each notebook its own (--city NAME picks one)\n"), line
        assert (home / "planner.ipynb").read_bytes() == (SHIPPED / "planner.ipynb").read_bytes()
        proc.send_signal(signal.SIGHUP)  # what a closed terminal sends
        proc.wait(30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) != 0:
                    break
            time.sleep(0.3)
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "JupyterLab outlived ssz lab"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_lab_that_will_not_stop_is_killed_with_its_kernels(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    kernel_pid = tmp_path / "kernel.pid"
    ignore = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    script = (ignore + "import subprocess, sys; "
              f"k = subprocess.Popen([sys.executable, '-c', {ignore + 'time.sleep(60)'!r}]); "
              f"open({str(kernel_pid)!r}, 'w').write(str(k.pid)); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)  # as lab.start does
    deadline = time.monotonic() + 10
    while not kernel_pid.exists() or not kernel_pid.read_text():
        assert time.monotonic() < deadline, "the stand-in did not start its kernel"
        time.sleep(0.05)
    time.sleep(0.2)  # both have set SIGTERM aside
    pid = int(kernel_pid.read_text())
    try:
        lab.stop(lab.LabServer(proc, "", "", tmp_path / "log"), timeout_s=0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status")
        if not status.exists() or "\tZ" in status.read_text():
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)  # still ours: it was alive a moment ago
    pytest.fail("the kernel outlived its lab")


@pytest.mark.services  # starts a real JupyterLab
def test_a_token_in_the_users_own_jupyter_config_does_not_win(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error
    import urllib.request

    (tmp_path / "jupyter_server_config.json").write_text(json.dumps({"IdentityProvider": {"token": ""}}))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))  # an empty token there turns login off
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = lab.start(port, "the-lab-token-5678", tmp_path / "notebooks")
    try:
        status = f"http://127.0.0.1:{port}/api/status"
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(status, timeout=10)
        with urllib.request.urlopen(f"{status}?token=the-lab-token-5678", timeout=10) as r:
            assert r.status == 200
    finally:
        lab.stop(server)
