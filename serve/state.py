"""The local state folder of the platform: the one place that resolves it.

``SSZ_HOME`` chooses it; the default is ``$XDG_STATE_HOME/ssz`` (``~/.local/state/ssz``). It holds the embedded
store's data and credentials, Ray session info, API tokens, watchlist and hotlist, model caches and outputs.
Tests point it at a temporary folder so they never touch a user's state. It lives in ``serve`` because the
recognition services need it and may not import ``cluster`` (which re-exports it as :mod:`cluster.state`).
"""

from __future__ import annotations

import os
from pathlib import Path


class StateHomeError(ValueError):
    """``SSZ_HOME`` (or the default state folder) cannot be used: the message says why and what to set instead."""


def ssz_home() -> Path:
    """The state folder, created on first use with owner-only permissions.

    Returns
    -------
    pathlib.Path
        ``$SSZ_HOME``, else ``$XDG_STATE_HOME/ssz``, else ``~/.local/state/ssz``.

    Raises
    ------
    StateHomeError
        when the folder cannot be made or used: ``~user`` of a user this machine does not know, a file in its
        place, or a place that cannot be written; the message names the folder and the variable to set.
    """
    env = os.environ.get("SSZ_HOME")
    where = f"SSZ_HOME={env}" if env else "the state folder (set SSZ_HOME to choose another)"
    try:
        if env:
            home = Path(env).expanduser()
        else:
            base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
            home = Path(base) / "ssz"
    except RuntimeError:  # pathlib's "Could not determine home directory" for ~user or no HOME
        raise StateHomeError(f"{where}: this machine knows no home folder for {(env or '~').split('/')[0]!r}: "
                             "set SSZ_HOME to a full path") from None
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise StateHomeError(f"{where}: {home} is a file, not a folder: set SSZ_HOME to a folder") from None
    except OSError as e:
        raise StateHomeError(f"{where}: cannot make the folder {home} ({e.strerror}): set SSZ_HOME to a folder "
                             "you can write") from None
    if not home.is_dir() or not os.access(home, os.W_OK | os.X_OK):
        raise StateHomeError(f"{where}: {home} is not a folder you can write: set SSZ_HOME to one") from None
    return home


def state_dir(name: str) -> Path:
    """A sub-folder of the state folder (``store``, ``ray``, ``out`` ...), created on first use (owner-only)."""
    d = ssz_home() / name
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d
