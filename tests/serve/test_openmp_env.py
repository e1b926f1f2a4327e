"""The OpenMP waits that :mod:`serve` sets before torch loads (and :mod:`cluster` by importing it), and that a
user's explicit setting wins: each case in a fresh interpreter, since the variables are set at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _env_after_import(module: str, **given: str) -> dict[str, str | None]:
    env = {k: v for k, v in os.environ.items() if k not in NAMES} | given
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    code = f"import json, os, {module}; print(json.dumps({{k: os.environ.get(k) for k in {NAMES!r}}}))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("module", ["serve", "cluster"])
def test_importing_sets_passive_waits_with_a_short_spin(module):
    assert _env_after_import(module) == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "5000"}


def test_a_users_settings_win_and_active_waits_keep_their_own_spin():
    assert _env_after_import("serve", GOMP_SPINCOUNT="100") == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "100"}
    assert _env_after_import("serve", OMP_WAIT_POLICY="passive") == {"OMP_WAIT_POLICY": "passive",
                                                                     "GOMP_SPINCOUNT": "5000"}
    # libgomp: an explicit GOMP_SPINCOUNT overrides the policy's spin (30 billion polls for ACTIVE)
    assert _env_after_import("serve", OMP_WAIT_POLICY="ACTIVE") == {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": None}
