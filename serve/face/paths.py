"""Local state paths of the face service, inside the one state folder (:mod:`serve.state`)."""

from __future__ import annotations

from pathlib import Path

from serve.state import ssz_home


def default_audit_path(watchlist_name: str) -> Path:
    """Where a watchlist's audit log goes when none is configured: ``<ssz_home>/audit/watchlist-<name>.jsonl``."""
    return ssz_home() / "audit" / f"watchlist-{watchlist_name}.jsonl"
