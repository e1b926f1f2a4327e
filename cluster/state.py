"""The local state folder (store data and credentials, Ray session info, outputs): :mod:`serve.state`, the one
resolver of ``SSZ_HOME``, seen from ``cluster``."""

from __future__ import annotations

from serve.state import StateHomeError, ssz_home, state_dir

__all__ = ["StateHomeError", "ssz_home", "state_dir"]
