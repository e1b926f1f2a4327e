"""The audited digest of a list's state (plate hotlist, face watchlist): recorded by every change, checked on load.

Both lists are rewritten in the object store on every audited change, and anyone holding the platform's S3
credentials could write a copy of their own. So every audited change records, in its audit event's details,
``list_key`` (``<bucket>/<key>`` of the store copy) and ``list_sha256``: the SHA-256 of the canonical JSON of
the list state it writes (:func:`state_digest`; the entries only, no save time, so an undo that puts the
previous entries back gives the previous digest). The event is written before the change (write-ahead), so the
digest is of the state the change is about to write.

The latest audited state of a copy (:func:`audited_states`) is the digest of the last change event for its key,
except that a ``<action>.failed`` event (the change was undone, :func:`serve.audit.write_ahead`) puts back the
digest that was current before that change; before any change is audited only an empty list is valid.

A copy loaded from the store (:func:`check_copy`) must hold that latest state (read again for a moment while
it holds the state before a change whose copy may still be being written); it is refused otherwise
(:class:`UnauditedListCopy`). ``ssz audit lists`` checks every stored version against every audited state, and
the current version against the latest.
The digest is of the state as written (embeddings included, for the watchlist), and only the digest goes into
the audit log, never the entries' embeddings.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from serve.audit import AuditError, AuditEvent, AuditLog
from serve.errors import UnavailableError

LIST_KEY = "list_key"
LIST_SHA256 = "list_sha256"
SETTLE_S = 2.0
"""Seconds a copy one audited change behind is read again before it is refused (:func:`check_copy`)."""


class UnauditedListCopy(AuditError, UnavailableError):
    """A stored list copy does not hold the latest audited state: written outside the platform; not loaded.
    The API answers 503 with the message: the list cannot be used until the audited copy is put back."""


def state_digest(state: Any) -> str:
    """Hex SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of a list state (JSON values only)."""
    text = json.dumps(state, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def seal(list_key: str, state: Any) -> dict[str, str]:
    """The audit details that record the state a change writes to ``list_key`` (``<bucket>/<key>``)."""
    return {LIST_KEY: list_key, LIST_SHA256: state_digest(state)}


@dataclass
class AuditedStates:
    """What one audit trail says about one list copy.

    ``latest``: the digest the copy must hold now (None: no change is in effect, only an empty list is valid).
    ``recorded``: every digest that was ever the audited state (None among them: the empty list, when a failed
    first change put it back). ``events``: how many change events name the copy. ``pending``: the latest change
    event when no ``.failed`` event followed it (its copy may still be being written), ``prior`` the digest
    before it.
    """

    latest: str | None = None
    recorded: set[str | None] = field(default_factory=set)
    events: int = 0
    pending: AuditEvent | None = None
    prior: str | None = None

    def admits_prior(self, digest: str, empty: bool) -> bool:
        """Whether a copy with ``digest`` holds the state before the pending change (see :attr:`pending`)."""
        return self.pending is not None and (digest == self.prior or (empty and self.prior is None))

    def admits(self, digest: str, empty: bool, latest_only: bool = True) -> bool:
        """Whether a copy with ``digest`` (``empty``: it holds no entries) is the latest audited state, or with
        ``latest_only`` False, any state the trail ever recorded."""
        if latest_only:
            return digest == self.latest or (empty and self.latest is None)
        return digest in self.recorded or (empty and (None in self.recorded or not self.events))


def audited_states(events: Iterable[AuditEvent], list_key: str) -> AuditedStates:
    """The audited states of the copy at ``list_key`` from one log's events, in order.

    A change event carries ``list_key`` and ``list_sha256``; a ``<action>.failed`` event whose ``event`` is such
    a change puts back the digest that was the latest before it.
    """
    out = AuditedStates()
    before: dict[int, str | None] = {}
    latest: str | None = None
    for ev in events:
        if ev.details.get(LIST_KEY) == list_key and isinstance(ev.details.get(LIST_SHA256), str):
            before[ev.seq] = out.prior = latest
            latest, out.pending = ev.details[LIST_SHA256], ev
            out.recorded.add(latest)
            out.events += 1
        elif ev.action.endswith(".failed") and ev.details.get("event") in before:
            latest, out.pending = before[ev.details["event"]], None
            out.recorded.add(latest)
    out.latest = latest
    return out


def check_copy(audit: AuditLog, list_key: str, read: Callable[[], tuple[str, bool, str | None]],
               settle_s: float | None = None) -> None:
    """Refuse a list copy read from the store unless it holds the latest state ``audit`` recorded for it.

    ``read()`` reads the copy (again) and returns ``(digest, empty, version_id)``: :func:`state_digest` of its
    state, whether it holds no entries (also for a key that holds nothing, ``version_id`` None then). When the
    log has a store, the locked mirror's events the local log lacks are added first
    (:meth:`serve.audit.AuditLog.catch_up`, one listing when there are none: a fresh node's empty log, another
    replica's changes, which a copy must not be older than). A copy that holds the state before the latest
    change (no ``.failed`` event after it) is read again for up to ``settle_s`` seconds (None: :data:`SETTLE_S`):
    the change's event is written before its copy (write-ahead), so a node that starts in between sees the
    previous state for a moment.

    Raises
    ------
    UnauditedListCopy
        Naming the key, its version id, the digests and what to do.
    AuditError, StoreError
        The audit trail cannot be read or does not verify (from :meth:`~serve.audit.AuditLog.catch_up`).
    """
    deadline = time.monotonic() + (SETTLE_S if settle_s is None else settle_s)
    while True:
        digest, empty, version_id = read()
        audit.catch_up()  # always: a log that is behind would admit a copy put back to the state it last knew
        events = audit.events()
        states = audited_states(events, list_key)
        if states.admits(digest, empty):
            return
        if not states.admits_prior(digest, empty) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    held = "nothing (no copy)" if empty and version_id is None else f"sha256 {digest}"
    where = f"s3://{list_key} (version {version_id or 'none'}) holds {held}, but audit log {audit.name}"
    if events and not states.events:  # a log from before digests were recorded
        raise UnauditedListCopy(
            f"{where} records no list digest in its {len(events)} events (written before digests were): the copy "
            "cannot be checked and was not loaded. Make one audited change on a node that has the list file (it "
            "records the digest), or give this node that file; then start again")
    want = (f"sha256 {states.latest}" if states.latest is not None
            else "an empty list (no change to it was ever audited)")
    how = "the copy was written outside the platform"
    if states.admits_prior(digest, empty) and (ev := states.pending) is not None:
        how = (f"the copy holds the state before the latest change (event {ev.seq}, {ev.action} {ev.subject} at "
               f"{ev.ts.isoformat(timespec='seconds')}): it was put back outside the platform, or that change's "
               "write to the store failed (then the next audited change on the node that made it writes the list)")
    raise UnauditedListCopy(
        f"{where} ({states.events} changes recorded for it) says it must hold {want}: {how}; it was not loaded. "
        "Run `ssz audit lists` to see which versions an audited change wrote, and copy the latest of them back over "
        f"s3://{list_key} (an S3 copy of that version id), or give this node the list file of a node that has it; "
        "then start again")
