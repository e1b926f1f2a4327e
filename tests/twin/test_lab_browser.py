"""``ssz lab`` in a real headless Chromium: the analyst notebook runs in JupyterLab and its kepler.gl map is drawn,
with no request leaving 127.0.0.1. The screenshot is kept in ``tests/artifacts/`` (path printed)."""

from __future__ import annotations

import io
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

from cluster.notebookcopies import SHIPPED
from tests.conftest import free_port_block

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NOTEBOOK = "analyst_hotspots.ipynb"
CITY = "betong"  # not the notebook's own (Hat Yai): the lab's --city reaches the kernel
LOCAL = re.compile(r"^(https?|wss?)://127\.0\.0\.1(:\d+)?/")


def _ssz() -> str:
    exe = Path(sys.executable).parent / "ssz"
    return str(exe) if exe.exists() else shutil.which("ssz") or "ssz"


@pytest.fixture
def lab_url(s3_store: object, tmp_path: Path) -> object:
    """``ssz lab --city betong`` started as a user starts it, on a free loopback port, with a notebook folder of
    its own (where it copies the shipped notebooks: JupyterLab autosaves, the repository's stay clean); yields
    (base URL, token)."""
    port = free_port_block(size=1)
    nbdir = tmp_path / "notebooks"
    proc = subprocess.Popen([_ssz(), "lab", "--port", str(port), "--expose-app", "--notebook-dir", str(nbdir),
                             "--city", CITY],
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
    assert (nbdir / NOTEBOOK).read_bytes() == (SHIPPED / NOTEBOOK).read_bytes()  # ssz lab made the copy
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
        kepler_log: list[str] = []
        page.on("console", lambda m: kepler_log.append(f"{m.type}: {m.text[:300]}") if m.type in ("error", "warning")
                and "GL Driver" not in m.text else None)
        page.on("pageerror", lambda e: kepler_log.append(f"pageerror: {str(e)[:300]}"))
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
            # every cell's outputs from the notebook's model (JupyterLab draws only the cells in view): the city
            # --city chose, not the notebook's own
            outputs = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
                .filter((c) => c.model.type === 'code').map((c) => JSON.stringify(c.model.outputs.toJSON()))
                .join('\\n')""")
            assert "Betong: zone" in outputs and "Hat Yai" not in outputs, outputs[:2000]
            widget = page.locator(".jp-OutputArea-output .kepler-gl").first
            widget.wait_for(timeout=120_000)
            widget.scroll_into_view_if_needed()
            page.wait_for_function("""() => [...document.querySelectorAll('.kepler-gl canvas')]
                .some((c) => c.width > 300 && c.height > 300)""", timeout=120_000)
            # kepler.gl processes the datasets and draws them some seconds after the canvas appears (longer on a
            # loaded machine): look at the map until it is drawn, at most 3 minutes
            t1 = time.monotonic()
            while True:
                img = np.asarray(Image.open(io.BytesIO(widget.screenshot())).convert("RGB"))
                seen = _drawn(img)
                if all(seen.values()) or time.monotonic() - t1 > 180:
                    break
                time.sleep(3)
            drawn_s = time.monotonic() - t1
            Image.fromarray(img).save(shot)
            page.screenshot(path=str(page_shot))
            (ARTIFACTS / "lab_console.txt").write_text("\n".join(kepler_log))
        finally:
            browser.close()
    print(f"run all cells took {took:.1f}s in the browser, the map was drawn {drawn_s:.1f}s after its canvas "
          f"appeared (load {os.getloadavg()[0]:.1f}); screenshots: {shot} {page_shot}")
    assert img.shape[0] > 300 and img.shape[1] > 600
    assert all(seen.values()), f"the kepler map is not drawn: {seen}; widget log: {kepler_log}"
    assert not outside and not ws_outside, f"requests left 127.0.0.1: {outside + ws_outside}"


def _drawn(img: np.ndarray) -> dict[str, bool]:
    """What of the hot-spots map is on a screenshot: many colours (not blank), the zone outline, density cells."""
    from twin import maps

    zone = (np.abs(img.astype(int) - np.array(maps.hex_rgb(maps.ZONE_COLOR))).max(axis=2) <= 16).sum()
    warm = ((img[..., 0].astype(int) - img[..., 2].astype(int)) > 60).sum()  # the density palette: reds to yellows
    return {"not blank": len(np.unique(img.reshape(-1, 3), axis=0)) > 300, "zone outline": bool(zone > 30),
            "density cells": bool(warm > 2000)}
