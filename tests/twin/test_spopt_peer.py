"""The plan bench's peer: spopt's MCLP in a subprocess reaches the same optimum as our exact solve."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from twin import placement as pl
from twin.spopt_peer import run_peer

pytestmark = pytest.mark.services  # a solver in a subprocess


def test_spopt_peer_matches_the_exact_optimum() -> None:
    rng = np.random.default_rng(3)
    A = sp.csr_matrix((rng.random((25, 60)) < 0.12).astype(np.int8))  # sites x demand
    w = rng.uniform(1, 10, 60)
    c0 = rng.random(60) < 0.2  # already covered by pinned cameras
    ours = pl.solve_exact(A, w, 4, c0, time_limit_s=30)
    peer = run_peer(A, np.where(c0, 0.0, w), 4, time_limit_s=30)
    assert "error" not in peer, peer
    assert peer["status"] == "Optimal" and peer["sites"] == 4
    assert peer["objective"] == pytest.approx(ours.objective, abs=0.2)
