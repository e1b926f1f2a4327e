"""Kinds of user error the services raise, so the HTTP API maps them by type, not by wording.

A service error that is also a :class:`NotFoundError` becomes 404, a :class:`ConflictError` 409, any other
``ValueError`` 400; everything else is a server fault (500).
"""

from __future__ import annotations


class NotFoundError(LookupError):
    """The record asked for does not exist (unknown warrant, unknown hotlist entry)."""


class ConflictError(ValueError):
    """The request clashes with the current state (a warrant already enrolled, a hotlist id already used)."""
