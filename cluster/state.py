"""The local state folder: embedded store data and credentials, Ray session info, outputs.

``SSZ_HOME`` chooses it; the default is ``$XDG_STATE_HOME/ssz`` (``~/.local/state/ssz``). Tests point it
at a temporary folder so they never touch a user's store.
"""

from __future__ import annotations

import os
from pathlib import Path


def ssz_home() -> Path:
    """The state folder, created on first use with owner-only permissions."""
    env = os.environ.get("SSZ_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        home = Path(base) / "ssz"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def state_dir(name: str) -> Path:
    """A sub-folder of the state folder (``store``, ``ray``, ``out`` ...), created on first use."""
    d = ssz_home() / name
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d
