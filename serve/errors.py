"""Kinds of user error the services raise, so the HTTP API maps them by type, not by wording.

A service error that is also a :class:`NotFoundError` becomes 404, a :class:`ConflictError` 409, an
:class:`UnavailableError` 503 (the change was not made: retry later), any other ``ValueError`` 400;
everything else is a server fault (500).
"""

from __future__ import annotations


class NotFoundError(LookupError):
    """The record asked for does not exist (unknown warrant, unknown hotlist entry)."""


class ConflictError(ValueError):
    """The request clashes with the current state (a warrant already enrolled, a hotlist id already used)."""


class UnavailableError(RuntimeError):
    """A dependency the change needs is down (the audit log cannot be written, the store is unreachable):
    nothing was changed and the caller may retry later (HTTP 503)."""


def error_text(err: BaseException) -> str:
    """The message of an error as a user should read it.

    ``str(KeyError("x"))`` is the quoted repr ``'x'``; stripping the quotes off both ends of any message (what
    the API once did) also cut the opening quote of messages such as ``'กขคง 123' is not a Thai registration``.
    A KeyError gives its first argument as it is; any other error its ``str``.
    """
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err)
