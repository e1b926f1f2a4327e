"""Local state paths of the face service (serve must not import cluster, so this mirrors cluster.state)."""

from __future__ import annotations

import os
from pathlib import Path


def ssz_home() -> Path:
    """``$SSZ_HOME``, else ``$XDG_STATE_HOME/ssz`` (``~/.local/state/ssz``) — the same folder cluster.state uses."""
    env = os.environ.get("SSZ_HOME")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_STATE_HOME", "~/.local/state")).expanduser() / "ssz"


def default_audit_path(watchlist_name: str) -> Path:
    """Where a watchlist's audit log goes when none is configured: ``<ssz_home>/audit/watchlist-<name>.jsonl``."""
    return ssz_home() / "audit" / f"watchlist-{watchlist_name}.jsonl"
