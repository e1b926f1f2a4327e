"""The planner notebook runs top to bottom offline: risk fixes, 20 cameras, a night shift."""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cluster.state import ssz_home

pytestmark = pytest.mark.services  # a solver, a notebook, plots or a benchmark: slow on its own

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "planner.ipynb"


def test_planner_notebook_runs(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(tmp_path)}})
    t0 = time.monotonic()
    client.execute()
    took = time.monotonic() - t0
    errors = [o.get("ename", "") + ": " + o.get("evalue", "") for c in nb.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")
    m = re.search(r"zone covered % \(risk-weighted\): ([\d.]+) -> ([\d.]+)", text)
    assert m and float(m.group(2)) > float(m.group(1)), text
    assert re.search(r"risk fixes: 5 work orders cut .* by [\d.]+%", text)
    assert "night shift: " in text and "dropped []" in text
    assert re.search(r"PAI \(top 10% of street length\) = [\d.]+", text)
    assert len(re.findall(r"^  unit-\d+: \d+ stops", text, flags=re.M)) == 2
    # with the other notebooks' maps in $SSZ_HOME/out, not beside the notebook (the repository under ssz lab)
    assert (ssz_home() / "out" / "chiangmai_planner_cameras.html").stat().st_size > 1_000_000
    assert not (tmp_path / "out").exists()
    print(f"planner notebook ran in {took:.1f}s")
