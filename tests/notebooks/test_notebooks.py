"""The analyst notebooks run top to bottom on the embedded default (the session's S3 store, no internet)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cluster.state import ssz_home

pytestmark = pytest.mark.services  # a solver, a notebook, plots or a benchmark: slow on its own

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _run(name: str, tmp_path: Path) -> tuple[nbformat.NotebookNode, float]:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # The kernel inherits this process's environment: SSZ_HOME is the suite's temporary state folder
    # (tests/conftest.py), where the session's store runs, so the notebook's store.up() finds that store.
    client = NotebookClient(nb, kernel_name="python3", timeout=180,
                            resources={"metadata": {"path": str(tmp_path)}})
    t0 = time.monotonic()
    client.execute()
    return nb, time.monotonic() - t0


def _errors(nb: nbformat.NotebookNode) -> list[str]:
    return [o.get("ename", "") + ": " + o.get("evalue", "") for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            parts.append(o.get("text", "") if o.get("output_type") == "stream" else
                         str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def _isolated_state(s3_store: object) -> None:
    home = Path(os.environ["SSZ_HOME"]).resolve()
    assert home == ssz_home().resolve() and home != (Path.home() / ".local" / "state" / "ssz").resolve()


def test_twin_explore_notebook_runs(s3_store: object, tmp_path: Path) -> None:
    from cluster.citytwin import twin_snapshot
    from twin import graphstore
    from twin.layers import TwinState
    from twin.snapshots import SnapshotStore

    city_head = twin_snapshot("hatyai", message="the city's own twin").id
    scratch = SnapshotStore(s3_store, "hatyai", prefix="notebooks/twin_explore")  # type: ignore[arg-type]
    scratch.create(TwinState("hatyai"), message="an earlier run")
    graphs = [g.digest for g in graphstore.list_graphs(s3_store, "hatyai")]  # type: ignore[arg-type]
    nb, took = _run("twin_explore.ipynb", tmp_path)
    # the tour's synthetic day lives in its scratch twin: the city's latest snapshot is still its own
    assert SnapshotStore(s3_store, "hatyai").latest().id == city_head  # type: ignore[arg-type,union-attr]
    assert len(scratch.list()) == 3  # this run's three snapshots: earlier runs' are not kept
    assert [g.digest for g in graphstore.list_graphs(s3_store, "hatyai")] == graphs  # type: ignore[arg-type]
    assert "save_graph" not in (NOTEBOOKS / "twin_explore.ipynb").read_text()  # the city's graphs: read only
    assert not _errors(nb), _errors(nb)
    text = _text(nb)
    assert "as of 13:00 ->" in text and "offline map:" in text
    out = sorted((ssz_home() / "out").glob("hatyai_twin_*.html"))
    assert out and out[-1].stat().st_size > 1_000_000
    widget_outputs = [o for c in nb.cells for o in c.get("outputs", [])
                      if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widget_outputs, "the kepler.gl widget was not displayed"
    print(f"twin_explore ran in {took:.1f}s")


def test_analyst_tour_notebook_runs(tmp_path: Path) -> None:
    nb, took = _run("analyst_tour.ipynb", tmp_path)
    assert not _errors(nb), _errors(nb)
    text = _text(nb)
    assert "zone covered %" in text and "offline map:" in text
    assert (ssz_home() / "out" / "hatyai_cameras.html").stat().st_size > 1_000_000
    print(f"analyst_tour ran in {took:.1f}s")
