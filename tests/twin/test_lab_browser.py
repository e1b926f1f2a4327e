"""``ssz lab`` in a real headless Chromium: the analyst notebook runs in JupyterLab and its kepler.gl map is drawn,
with no request leaving 127.0.0.1. The screenshot is kept in ``tests/artifacts/`` (path printed)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port_block

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NOTEBOOK = "analyst_hotspots.ipynb"
LOCAL = re.compile(r"^(https?|wss?)://127\.0\.0\.1(:\d+)?/")


def _ssz() -> str:
    exe = Path(sys.executable).parent / "ssz"
    return str(exe) if exe.exists() else shutil.which("ssz") or "ssz"


@pytest.fixture
def lab_url(s3_store: object, tmp_path: Path) -> object:
    """``ssz lab`` started as a user starts it, on a free loopback port, on a copy of the notebooks (JupyterLab
    autosaves: the repository's notebooks stay clean); yields (base URL, token)."""
    port = free_port_block(size=1)
    nbdir = tmp_path / "notebooks"
    shutil.copytree(Path(__file__).resolve().parents[2] / "notebooks", nbdir)
    proc = subprocess.Popen([_ssz(), "lab", "--port", str(port), "--expose-app", "--dir", str(nbdir)],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    url = None
    t0 = time.monotonic()
    lines = []
    assert proc.stdout is not None
    while time.monotonic() - t0 < 180:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"JupyterLab: (http://127\.0\.0\.1:\d+)/lab\?token=([0-9a-f]+)", line)
        if m:
            url = m.groups()
            break
    assert url, "ssz lab printed no URL with a token:\n" + "".join(lines)
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_analyst_notebook_runs_in_jupyterlab_and_draws_the_kepler_map(lab_url: tuple[str, str]) -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    base, token = lab_url
    ARTIFACTS.mkdir(exist_ok=True)
    shot, page_shot = ARTIFACTS / "lab_kepler_map.png", ARTIFACTS / "lab_notebook.png"
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--run-all-compositor-stages-before-draw", "--disable-background-networking",
            "--disable-component-update"])
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})

        def route(r: object) -> None:
            url = r.request.url  # type: ignore[attr-defined]
            if LOCAL.match(url) or url.startswith(("data:", "blob:")):
                r.continue_()  # type: ignore[attr-defined]
            else:
                outside.append(url)
                r.abort()  # type: ignore[attr-defined]

        ctx.route("**/*", route)
        page = ctx.new_page()
        ws_outside: list[str] = []
        page.on("websocket", lambda ws: None if LOCAL.match(ws.url) else ws_outside.append(ws.url))
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", timeout=120_000)
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            page.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                return !!k && k.connectionStatus === 'connected' && k.status === 'idle'
                       && w.sessionContext.kernelDisplayName.includes('Smart Safety Zone'); }""", timeout=180_000)
            t0 = time.monotonic()
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            # every code cell has an execution count and the kernel is idle again
            page.wait_for_function("""() => { const w = window.jupyterapp.shell.currentWidget;
                const cells = w.content.widgets.filter((c) => c.model.type === 'code');
                return cells.every((c) => c.model.executionCount !== null)
                       && w.sessionContext.session.kernel.status === 'idle'; }""", timeout=240_000, polling=1000)
            took = time.monotonic() - t0
            text = page.inner_text(".jp-Notebook")
            assert "Traceback" not in text, text[-3000:]
            assert "KEY {" in text
            widget = page.locator(".jp-OutputArea-output .kepler-gl").first
            widget.wait_for(timeout=120_000)
            widget.scroll_into_view_if_needed()
            page.wait_for_function("""() => [...document.querySelectorAll('.kepler-gl canvas')]
                .some((c) => c.width > 300 && c.height > 300)""", timeout=120_000)
            time.sleep(6)  # let deck.gl finish drawing the layers
            widget.screenshot(path=str(shot))
            page.screenshot(path=str(page_shot))
        finally:
            browser.close()
    print(f"run all cells took {took:.1f}s in the browser (load {os.getloadavg()[0]:.1f}); "
          f"screenshots: {shot} {page_shot}")
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[0] > 300 and img.shape[1] > 600
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    assert colours > 300, f"only {colours} colours: the map looks blank"
    # the density cells (DENSITY_COLORS, quantized) and the zone outline are drawn
    from twin import maps

    def near(c: str, tol: int = 16) -> int:
        return int((np.abs(img.astype(int) - np.array(maps.hex_rgb(c))).max(axis=2) <= tol).sum())

    assert near(maps.ZONE_COLOR) > 30, "no zone outline on the map"
    warm = (img[..., 0].astype(int) - img[..., 2].astype(int)) > 60  # the density palette: reds to yellows
    assert warm.sum() > 2000, f"no density cells on the map ({int(warm.sum())} warm pixels)"
    assert not outside and not ws_outside, f"requests left 127.0.0.1: {outside + ws_outside}"
