"""The peer of ``ssz bench plan``: spopt's MCLP on the same demand, sites and p, run in its own process.

spopt (PySAL) builds the MCLP with PuLP from a dense demand x site cost matrix; its HiGHS, if loaded, clashes
with OR-Tools' in one process, so :func:`run_peer` runs this module as a subprocess::

    python -m twin.spopt_peer problem.npz result.json

``problem.npz`` holds the coverage matrix (CSR parts), the demand weights with pinned coverage removed and p.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp


def run_peer(A: sp.spmatrix, w: np.ndarray, p: int, time_limit_s: float = 120.0) -> dict[str, Any]:
    """Solve the same MCLP with spopt in a subprocess; {solve_s, status, objective, sites} or {error}.

    ``A`` is our coverage matrix (sites x demand points, :mod:`twin.placement`), ``w`` the demand weights with
    what pinned cameras cover set to 0, ``p`` the number of new sites.
    """
    A = sp.csr_matrix(A)
    with tempfile.TemporaryDirectory(prefix="ssz-spopt-") as d:
        prob, out = Path(d) / "problem.npz", Path(d) / "result.json"
        np.savez(prob, data=A.data, indices=A.indices, indptr=A.indptr, shape=np.array(A.shape), w=w, p=p,
                 time_limit_s=time_limit_s)
        try:
            res = subprocess.run([sys.executable, "-m", "twin.spopt_peer", str(prob), str(out)], capture_output=True,
                                 text=True, timeout=time_limit_s * 3 + 120)
        except subprocess.TimeoutExpired:
            return {"error": f"spopt did not finish in {time_limit_s * 3 + 120:.0f} s"}
        if res.returncode != 0:
            tail = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
            return {"error": f"spopt failed: {tail}"}
        return dict(json.loads(out.read_text()))


def _solve(prob: Path) -> dict[str, Any]:
    import pulp
    from spopt.locate import MCLP

    z = np.load(prob)
    A = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    w, p = z["w"], int(z["p"])
    cost = np.where(A.T.toarray() > 0, 0.0, 1.0)  # demand x sites; covered <=> cost within the radius 0.5
    t = time.perf_counter()
    model = MCLP.from_cost_matrix(cost, w, service_radius=0.5, p_facilities=p, name="ssz-peer")
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=float(z["time_limit_s"])), results=False)
    solve_s = time.perf_counter() - t
    sites = [j for j, v in enumerate(model.fac_vars) if (v.value() or 0) > 0.5]
    covered = np.asarray(A[sites, :].sum(axis=0)).ravel() > 0
    import spopt

    return {"peer": f"spopt {spopt.__version__} MCLP (PuLP CBC)", "build_s": round(build_s, 3),
            "solve_s": round(solve_s, 3), "status": pulp.LpStatus[model.problem.status],
            "objective": round(float(w[covered].sum()), 1), "sites": len(sites)}


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(_solve(Path(sys.argv[1]))))
