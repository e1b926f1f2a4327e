"""``--json`` commands keep stdout for their JSON document: what Ray, libraries and child processes write to
stdout meanwhile lands on stderr (the code path every ``--json`` command takes, in a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# What a command with --json does: stdout reserved first, noise from Python, from a child process that inherits
# file descriptor 1 (as Ray's daemons do), from C-level writes and from an atexit hook (as Ray's shutdown prints
# leftover worker logs), then the result written by emit().
SCRIPT = """
import atexit, os, subprocess
from pydantic import BaseModel
from cluster.cli.common import emit, reserve_stdout
class Result(BaseModel):
    city: str
    alerts: int
reserve_stdout()
reserve_stdout()  # idempotent
print("2026-11-30 10:40:28 WARNING worker.py:1 -- a Ray warning")
subprocess.run(["echo", "(raylet) a daemon's line"], check=True)
os.write(1, b"[C++] core_worker.cc:42: a native log line\\n")
atexit.register(lambda: print("(raylet) leftover worker log at shutdown"))
emit(Result(city="hatyai", alerts=3), as_json=True)
print("after the document")
"""


def test_json_commands_print_only_the_document_on_stdout() -> None:
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"city": "hatyai", "alerts": 3}
    for noise in ("a Ray warning", "a daemon's line", "a native log line", "leftover worker log", "after the doc"):
        assert noise in res.stderr and noise not in res.stdout
