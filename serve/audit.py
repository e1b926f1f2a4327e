"""Append-only, hash-chained audit log for watchlist, hotlist and alert decisions.

Every change to the warrant watchlist or the plate hotlist and every alert status change is an
:class:`AuditEvent`. Events are appended to a JSON-lines file (fsync'd) and chained by SHA-256: each
event's hash covers its content and the previous event's hash, so editing or deleting a past line is
detected by :meth:`AuditLog.verify`. With an object store, each event is also written as its own object
in the object-locked ``evidence`` bucket (``audit/<name>/<seq>.json``), which the store refuses to delete
within the retention period: an operator with disk access still cannot erase history.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from twin.objectstore import EVIDENCE_BUCKET, Store

GENESIS = "0" * 64


class AuditError(RuntimeError):
    """The audit log is unreadable or its hash chain is broken (tampering or a torn write)."""


class AuditEvent(BaseModel):
    """One audited action: who did what to which record, when."""

    seq: int
    ts: datetime
    actor: str = Field(min_length=1)
    action: str = Field(min_length=1)
    subject: str
    details: dict[str, Any] = {}
    prev_hash: str
    hash: str = ""

    def digest(self) -> str:
        """SHA-256 over the event's content and the previous hash (the chain link)."""
        body = self.model_dump(mode="json", exclude={"hash"})
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class AuditLog:
    """An append-only audit log in a JSON-lines file, optionally mirrored to the object-locked store."""

    def __init__(self, path: str | os.PathLike[str], name: str = "audit", store: Store | None = None) -> None:
        self.path = Path(path)
        self.name = name
        self.store = store
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _tail(self) -> AuditEvent | None:
        """The last event, read from the end of the file (cheap for long logs)."""
        if not self.path.exists():
            return None
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            pos, chunk = f.tell(), b""
            while pos > 0:
                step = min(65536, pos)
                pos -= step
                f.seek(pos)
                chunk = f.read(step) + chunk
                lines = [ln for ln in chunk.splitlines() if ln.strip()]
                if len(lines) >= 2 or (pos == 0 and lines):
                    try:
                        return AuditEvent.model_validate_json(lines[-1])
                    except ValueError as e:
                        raise AuditError(f"{self.path}: unreadable last audit line ({e})") from e
        return None

    def _read(self) -> list[AuditEvent]:
        events = []
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    events.append(AuditEvent.model_validate_json(line))
                except ValueError as e:
                    raise AuditError(f"{self.path}:{n}: unreadable audit line ({e})") from e
        return events

    def append(self, actor: str, action: str, subject: str, details: dict[str, Any] | None = None) -> AuditEvent:
        """Record one action; returns the chained event. Durable when it returns.

        Safe for several writers of one file (threads, Serve replicas, processes on one node): the file is
        locked and its last event re-read under the lock, so the chain never forks.
        """
        with self._lock, open(self.path, "a+", encoding="utf-8") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                prev = self._tail()
                ev = AuditEvent(seq=(prev.seq + 1) if prev else 1, ts=datetime.now(UTC), actor=actor,
                                action=action, subject=subject, details=details or {},
                                prev_hash=prev.hash if prev else GENESIS)
                ev.hash = ev.digest()
                line = ev.model_dump_json() + "\n"
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        if self.store is not None:
            self.store.put_bytes(EVIDENCE_BUCKET, f"audit/{self.name}/{ev.seq:012d}.json", line.encode(),
                                 content_type="application/json")
        return ev

    def events(self, subject: str | None = None) -> list[AuditEvent]:
        """All events in order, or those about one subject."""
        if not self.path.exists():
            return []
        evs = self._read()
        return [e for e in evs if subject is None or e.subject == subject]

    def verify(self) -> int:
        """Check the hash chain end to end; returns the number of events, raises AuditError if broken."""
        prev_hash, seq = GENESIS, 0
        for ev in self.events():
            if ev.seq != seq + 1:
                raise AuditError(f"{self.path}: event {ev.seq} follows {seq}: an event was removed or reordered")
            if ev.prev_hash != prev_hash or ev.digest() != ev.hash:
                raise AuditError(f"{self.path}: event {ev.seq} does not match its hash: the log was altered")
            prev_hash, seq = ev.hash, ev.seq
        return seq
