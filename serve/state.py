"""The local state folder of the platform: the one place that resolves it.

``SSZ_HOME`` chooses it; the default is ``$XDG_STATE_HOME/ssz`` (``~/.local/state/ssz``). It holds the embedded
store's data and credentials, Ray session info, API tokens, watchlist and hotlist, model caches and outputs.
Tests point it at a temporary folder so they never touch a user's state. It lives in ``serve`` because the
recognition services need it and may not import ``cluster`` (which re-exports it as :mod:`cluster.state`).
"""

from __future__ import annotations

import os
from pathlib import Path


def ssz_home() -> Path:
    """The state folder, created on first use with owner-only permissions.

    Returns
    -------
    pathlib.Path
        ``$SSZ_HOME``, else ``$XDG_STATE_HOME/ssz``, else ``~/.local/state/ssz``.
    """
    env = os.environ.get("SSZ_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        home = Path(base) / "ssz"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def state_dir(name: str) -> Path:
    """A sub-folder of the state folder (``store``, ``ray``, ``out`` ...), created on first use (owner-only)."""
    d = ssz_home() / name
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d
