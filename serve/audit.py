"""Append-only audit log with a keyed MAC chain, a locked mirror and anchors; tampering is named.

Every change to the warrant watchlist, the plate hotlist, API users and roles, and every alert decision is an
:class:`AuditEvent`, written **before** the change takes effect (the callers write the event first and do
the change only when :meth:`AuditLog.append` returned; a failed write raises :class:`AuditWriteError`,
which the HTTP API answers with 503, and the change is not made).

What makes it tamper-evident:

- **Keyed chain**: each event carries ``mac = HMAC-SHA256(key, event without mac)``, and the event covers the
  previous event's MAC. The key comes from :func:`serve.keys.load_key` (``SSZ_AUDIT_KEY`` in production, a
  0600 file in ``<ssz_home>/keys`` here) and is never stored beside the log: editing an event and
  re-computing the chain needs the key.
- **Locked mirror**: with an object store, each event's exact line is also written to the object-locked
  ``evidence`` bucket as ``audit/<name>/<seq>.json`` (COMPLIANCE retention: nobody, admins included, can
  delete it within the retention period), once (``If-None-Match``: a retry of the same line is the same
  write; another event already there refuses the append). A second version of a mirrored event or a delete
  marker is itself reported as tampering.
- **Anchors**: every ``anchor_every`` events, ``(seq, mac)`` is written to
  ``audit/<name>/anchors/<seq>.json`` in the same bucket.

:meth:`AuditLog.check` verifies the local log against all three and names the first bad event: an edited
event (MAC or mirror mismatch), a deleted one (gap in ``seq``), reordered ones, a truncated tail (the mirror
or an anchor holds events the local log lacks), an event that never reached the mirror. A **torn tail** (a
last line cut by a crash or a full disk, with no newline) is not tampering: :meth:`AuditLog.repair_tail`
cuts it off, keeps the cut bytes in ``<log>.torn-<time>`` for inspection, and keeps every good event; it runs
before every append, so a torn write never blocks later changes.

Strings in ``details`` are passed through :func:`serve.redact.redact_obj` (no URL credentials in the log).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from serve.errors import UnavailableError
from serve.keys import load_key
from serve.redact import redact, redact_obj
from twin.objectstore import EVIDENCE_BUCKET, ObjectExists, Store, original

log = logging.getLogger(__name__)

GENESIS = "0" * 64
MAC_ALG = "hmac-sha256"
LEGACY_ALG = "sha256"  # logs written before the keyed chain: no `alg` field, plain SHA-256, cannot be verified
KEY_ENV = "SSZ_AUDIT_KEY"


class AuditError(RuntimeError):
    """The audit log does not verify (tampering, a lost event, a wrong key); the message names the event."""


class AuditWriteError(AuditError, UnavailableError):
    """An audit event could not be written durably (disk full, store down): the change must not happen (503)."""


class AuditEvent(BaseModel):
    """One audited action: who did what to which record, when, chained to the previous event by a keyed MAC."""

    seq: int = Field(ge=1, description="position in the log, 1-based, no gaps")
    ts: datetime = Field(description="UTC time the event was written")
    actor: str = Field(min_length=1, description="who did it, e.g. 'api:somchai' or 'system:expiry'")
    action: str = Field(min_length=1, description="what was done, e.g. 'enrol', 'hotlist.add', 'alert.confirmed'")
    subject: str = Field(description="the record it was done to (warrant number, hotlist id, alert id, user)")
    details: dict[str, Any] = Field(default_factory=dict, description="record fields (never embeddings)")
    prev_hash: str = Field(description="MAC of the previous event (64 zeros for the first)")
    alg: str = Field(default=LEGACY_ALG, description="how `hash` is computed (events of old logs lack it)")
    hash: str = Field(default="", description="HMAC-SHA256 of the event without this field, hex")

    def digest(self, key: bytes) -> str:
        """HMAC-SHA256 (hex) over the canonical JSON of the event without ``hash`` (the chain link)."""
        body = self.model_dump(mode="json", exclude={"hash"})
        msg = json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
        return hmac.new(key, msg, hashlib.sha256).hexdigest()


class AuditReport(BaseModel):
    """What :meth:`AuditLog.check` found about one log."""

    name: str = Field(description="the log's name (its prefix in the evidence bucket)")
    path: str = Field(description="the local JSON-lines file")
    events: int = Field(default=0, description="events in the local log")
    mirrored: int | None = Field(default=None, description="events in the locked mirror (None: no store)")
    anchors: int | None = Field(default=None, description="anchors in the locked bucket (None: no store)")
    torn_bytes_repaired: int = Field(default=0, description="bytes of a torn last line cut off (kept aside)")
    first_bad_seq: int | None = Field(default=None, description="the first event that does not verify")
    problems: list[str] = Field(default_factory=list, description="what is wrong, first problem first")

    @property
    def ok(self) -> bool:
        """True when the log verified without a problem."""
        return not self.problems


def _mirror_key(name: str, seq: int) -> str:
    return f"audit/{name}/{seq:012d}.json"


def _anchor_key(name: str, seq: int) -> str:
    return f"audit/{name}/anchors/{seq:012d}.json"


class AuditLog:
    """An append-only audit log in a JSON-lines file, mirrored to the object-locked store when one is given.

    Parameters
    ----------
    path
        The local JSON-lines file (created 0600).
    name
        The log's name: its prefix ``audit/<name>/`` in the evidence bucket.
    store
        A :class:`twin.objectstore.Store` for the locked mirror and anchors; None = local only.
    key
        The MAC key; None = :func:`serve.keys.load_key` (``SSZ_AUDIT_KEY`` or ``<ssz_home>/keys/audit.key``).
    anchor_every
        Write a ``(seq, mac)`` anchor every this many events.
    """

    def __init__(self, path: str | os.PathLike[str], name: str = "audit", store: Store | None = None,
                 key: bytes | None = None, anchor_every: int = 64) -> None:
        self.path = Path(path)
        self.name = name
        self.store = store
        self.key = key if key is not None else load_key("audit", KEY_ENV)
        self.anchor_every = max(1, anchor_every)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    # ---------------------------------------------------------------- local file
    @contextlib.contextmanager
    def _locked(self) -> Iterator[Any]:
        """The log file opened for append, held under the thread lock and an exclusive flock."""
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a+b") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                try:
                    yield f
                finally:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _torn_at(f: Any) -> int | None:
        """Where a torn last line (one without its newline) starts, or None when the file ends whole."""
        f.seek(0, os.SEEK_END)
        end = f.tell()
        if end == 0:
            return None
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return None
        pos = end
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            cut = f.read(step).rfind(b"\n")
            if cut >= 0:
                return pos + cut + 1
        return 0

    def _repair(self, f: Any) -> int:
        start = self._torn_at(f)
        if start is None:
            return 0
        f.seek(start)
        torn = f.read()
        aside = self.path.with_name(f"{self.path.name}.torn-{datetime.now(UTC):%Y%m%dT%H%M%S%f}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(torn)
        f.truncate(start)
        f.flush()
        os.fsync(f.fileno())
        log.warning("audit log %s: cut a torn last line of %d bytes (kept in %s)", self.path, len(torn), aside)
        return len(torn)

    def repair_tail(self) -> int:
        """Cut off a torn last line (kept in ``<log>.torn-<time>``); returns how many bytes were cut (0: none)."""
        if not self.path.exists():
            return 0
        with self._locked() as f:
            return self._repair(f)

    def _last(self, f: Any) -> AuditEvent | None:
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
                    raise AuditWriteError(f"{self.path}: the last audit line is not an event ({e}); run "
                                          "`ssz audit verify` to see what is wrong") from e
        return None

    def _lines(self) -> list[bytes]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            return [ln for ln in f.read().split(b"\n") if ln.strip()]

    # ---------------------------------------------------------------- writing
    def append(self, actor: str, action: str, subject: str, details: dict[str, Any] | None = None) -> AuditEvent:
        """Record one action durably (fsync'd locally and, with a store, mirrored to the locked bucket).

        Safe for several writers of one file (threads, replicas and processes on one host): the file is locked
        and its last event re-read under the lock, so the chain never forks. A torn last line is repaired first.

        Raises
        ------
        AuditWriteError
            When the event could not be written locally or mirrored; the local line is rolled back, so the log
            stays as it was and the caller must not make the change.
        """
        try:
            with self._locked() as f:
                self._repair(f)
                prev = self._last(f)
                if prev is not None and prev.alg != MAC_ALG:
                    raise AuditWriteError(f"{self.path} was written by an older version without a keyed MAC: move it "
                                          "aside (it stays readable) so that a new keyed log starts, then retry")
                ev = AuditEvent(seq=(prev.seq + 1) if prev else 1, ts=datetime.now(UTC), actor=redact(actor),
                                action=action, subject=redact(subject), details=redact_obj(details or {}),
                                prev_hash=prev.hash if prev else GENESIS, alg=MAC_ALG)
                ev.hash = ev.digest(self.key)
                line = (ev.model_dump_json() + "\n").encode()
                f.seek(0, os.SEEK_END)
                size = f.tell()
                try:
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
                    if self.store is not None:  # written once: a retry of the same line is the same write
                        self.store.put_new(EVIDENCE_BUCKET, _mirror_key(self.name, ev.seq), line,
                                           content_type="application/json")
                except Exception as e:
                    with contextlib.suppress(OSError):  # the event is not kept: the change is not made
                        f.truncate(size)
                        f.flush()
                        os.fsync(f.fileno())
                    if isinstance(e, ObjectExists):
                        raise AuditWriteError(
                            f"audit log {self.name}: the locked mirror already holds a different event {ev.seq}: "
                            f"the local log lost events or the mirror was written by someone else; the change was "
                            f"not made: run `ssz audit verify {self.name}` (and `ssz audit restore` to rebuild the "
                            "log)") from e
                    raise AuditWriteError(f"audit log {self.name}: event {ev.seq} could not be written ({e}); "
                                          "the change was not made: free disk space or start the object store, "
                                          "then retry") from e
        except OSError as e:
            raise AuditWriteError(f"audit log {self.path} cannot be written ({e}); the change was not made") from e
        if self.store is not None and ev.seq % self.anchor_every == 0:
            self._anchor(ev)
        return ev

    def _anchor(self, ev: AuditEvent) -> None:
        body = json.dumps({"seq": ev.seq, "hash": ev.hash, "ts": ev.ts.isoformat(), "name": self.name}).encode()
        try:
            self.store.put_new(EVIDENCE_BUCKET, _anchor_key(self.name, ev.seq), body,  # type: ignore[union-attr]
                               content_type="application/json")
        except Exception as e:  # the event itself is mirrored; the next anchor follows (an existing anchor is kept)
            log.warning("audit log %s: anchor at event %d not written: %s", self.name, ev.seq, e)

    # ---------------------------------------------------------------- reading
    def events(self, subject: str | None = None) -> list[AuditEvent]:
        """All events in order, or those about one subject (a torn last line is skipped)."""
        out = []
        lines = self._lines()
        for n, line in enumerate(lines, 1):
            try:
                ev = AuditEvent.model_validate_json(line)
            except ValueError as e:
                if n == len(lines):
                    break  # a torn tail: repair_tail cuts it
                raise AuditError(f"{self.path}:{n}: unreadable audit line ({e})") from e
            if subject is None or ev.subject == subject:
                out.append(ev)
        return out

    def check(self, repair: bool = True) -> AuditReport:
        """Verify the log (chain, MACs, mirror, anchors); with ``repair`` cut a torn tail first.

        Returns an :class:`AuditReport`; ``report.ok`` is False and ``report.problems[0]`` names the first bad
        event when anything does not verify.
        """
        rep = AuditReport(name=self.name, path=str(self.path))
        if repair:
            rep.torn_bytes_repaired = self.repair_tail()
        lines = self._lines()
        events: list[AuditEvent] = []

        def bad(seq: int, msg: str) -> None:
            rep.problems.append(msg)
            if rep.first_bad_seq is None or seq < rep.first_bad_seq:
                rep.first_bad_seq = seq

        prev_hash, seq = GENESIS, 0
        for n, line in enumerate(lines, 1):
            try:
                ev = AuditEvent.model_validate_json(line)
            except ValueError:
                bad(seq + 1, f"{self.path}:{n}: line {n} is not an audit event (edited or corrupted)")
                break
            if ev.seq != seq + 1:
                bad(seq + 1, f"event {seq + 1} is missing: event {ev.seq} is in its place (line {n}): events "
                             "were removed, reordered or duplicated")
                break
            if ev.alg != MAC_ALG:
                bad(ev.seq, f"event {ev.seq} was written by an older version without a keyed MAC ({self.path}): it "
                            f"cannot be verified; move the file aside (e.g. to {self.path.name}.legacy) to start a "
                            "new keyed log")
                break
            if not hmac.compare_digest(ev.digest(self.key), ev.hash):
                bad(ev.seq, f"event {ev.seq} ({ev.action} {ev.subject} by {ev.actor}) does not match its MAC: "
                            "it was edited, or the audit key is not the one it was written with")
                break
            if ev.prev_hash != prev_hash:
                bad(ev.seq, f"event {ev.seq} does not link to event {seq}: events were removed or reordered")
                break
            events.append(ev)
            prev_hash, seq = ev.hash, ev.seq
        rep.events = len(lines)
        if self.store is not None:
            self._check_mirror(rep, lines, events, bad)
        return rep

    def _check_mirror(self, rep: AuditReport, lines: list[bytes], events: list[AuditEvent], bad: Any) -> None:
        try:
            versions, anchors = self._mirror_versions()
        except Exception as e:
            bad(1, f"the locked mirror of {self.name} cannot be listed ({e}): start the object store and verify again")
            return
        rep.mirrored, rep.anchors = len(versions), len(anchors)
        by_seq = {i + 1: line for i, line in enumerate(lines)}
        for seq in sorted(versions):
            objs = versions[seq]
            if any(o.is_delete_marker for o in objs):
                bad(seq, f"event {seq}: its locked mirror copy was deleted (a delete marker exists)")
                continue
            if len(objs) > 1:
                bad(seq, f"event {seq}: its locked mirror copy was rewritten ({len(objs)} versions)")
                continue
            local = by_seq.get(seq)
            if local is None:
                bad(seq, f"event {seq} is in the locked mirror but not in the local log ({len(lines)} events): "
                         "the local log was truncated or events were removed")
                continue
            if not self.store.holds(EVIDENCE_BUCKET, objs[0], local + b"\n"):  # type: ignore[union-attr]
                bad(seq, f"event {seq} differs from its locked mirror copy: the local event was edited")
        for seq in range(1, len(lines) + 1):
            if seq not in versions:
                bad(seq, f"event {seq} is not in the locked mirror: it was inserted, or written while the store "
                         "was unreachable")
                break
        macs = {e.seq: e.hash for e in events}
        for seq in sorted(anchors):
            if len(anchors[seq]) > 1 or any(o.is_delete_marker for o in anchors[seq]):
                bad(seq, f"anchor {seq}: its locked copy was rewritten or deleted ({len(anchors[seq])} versions); "
                         "the first version is checked")
            first = original(anchors[seq])
            if first is None:
                continue  # only delete markers: named above
            try:
                doc = json.loads(self.store.get_bytes(EVIDENCE_BUCKET, first.object_name,  # type: ignore[union-attr]
                                                      version_id=first.version_id))
            except Exception as e:
                bad(seq, f"anchor {seq} of {self.name} cannot be read ({e})")
                continue
            if seq > len(lines):
                bad(seq, f"anchor {seq} is past the end of the local log ({len(lines)} events): the log was truncated")
            elif seq in macs and doc.get("hash") != macs[seq]:
                bad(seq, f"event {seq} does not match its anchor in the locked bucket: the chain was rewritten")
        rep.problems.sort(key=lambda p: _seq_of(p))

    def _mirror_versions(self, after: int = 0) -> tuple[dict[int, list[Any]], dict[int, list[Any]]]:
        """The locked mirror's events (those after event ``after`` only) and anchors by seq, each with its
        versions and delete markers oldest first (:meth:`twin.objectstore.Store.versions`; the listing starts
        after event ``after``'s key). Raises StoreError when the bucket cannot be listed."""
        prefix = f"audit/{self.name}/"
        events: dict[int, list[Any]] = {}
        anchors: dict[int, list[Any]] = {}
        for key, objs in self.store.versions(EVIDENCE_BUCKET, prefix,  # type: ignore[union-attr]
                                             start_after=_mirror_key(self.name, after) if after else None):
            rest = key[len(prefix):]
            into = anchors if rest.startswith("anchors/") else events
            with contextlib.suppress(ValueError):
                into[int(rest.removeprefix("anchors/").removesuffix(".json"))] = objs
        return events, anchors

    def _mirrored_lines(self, after: int, prev: str) -> list[bytes]:
        """The locked mirror's events after event ``after`` (whose MAC is ``prev``), the first version of each,
        checked to continue the keyed chain; [] when the mirror holds none after it.

        Raises AuditError when one is missing or does not verify with this key, StoreError when the store
        cannot be read.
        """
        store = self.store
        assert store is not None
        first = {seq: o for seq, objs in self._mirror_versions(after)[0].items() if (o := original(objs)) is not None}
        seqs = range(after + 1, max(first, default=after) + 1)
        if missing := [seq for seq in seqs if seq not in first]:
            raise AuditError(f"audit log {self.name}: event {missing[0]} is missing from the locked mirror")
        with ThreadPoolExecutor(8) as ex:  # one GET each: a fresh node fetches the whole log
            fetched = list(ex.map(lambda seq: store.get_bytes(EVIDENCE_BUCKET, first[seq].object_name,
                                                              version_id=first[seq].version_id), seqs))
        lines = []
        for seq, raw in zip(seqs, fetched, strict=True):
            line = raw.rstrip(b"\n")
            ev = AuditEvent.model_validate_json(line)
            if ev.seq != seq or not hmac.compare_digest(ev.digest(self.key), ev.hash):
                raise AuditError(f"audit log {self.name}: mirrored event {seq} does not verify with this key")
            if ev.prev_hash != prev:
                raise AuditError(f"audit log {self.name}: mirrored event {seq} does not follow event {seq - 1} of the "
                                 "local log: the local log and the locked mirror differ (run `ssz audit verify`)")
            lines.append(line)
            prev = ev.hash
        return lines

    def catch_up(self) -> int:
        """Append the locked mirror's events that follow the local log's last event (all of them to a fresh
        node's empty log), each checked to continue the keyed chain; returns how many (0: none, or no store).

        This is how a node that did not write the latest events (a fresh node, another replica's changes)
        learns them. Raises AuditError when a mirrored event does not continue the local chain (run
        ``ssz audit verify``), StoreError when the store cannot be read.
        """
        if self.store is None:
            return 0
        with self._locked() as f:
            self._repair(f)
            last = self._last(f)
            lines = self._mirrored_lines(last.seq if last else 0, last.hash if last else GENESIS)
            if lines:
                f.seek(0, os.SEEK_END)
                f.write(b"\n".join(lines) + b"\n")
                f.flush()
                os.fsync(f.fileno())
        return len(lines)

    def trail(self) -> list[AuditEvent]:
        """The local log's events followed by the locked mirror's events after them, each checked to continue
        the keyed chain, without adding them to the file (what :meth:`catch_up` would leave; a truncated local
        log stays as it is for :meth:`check` to name). Raises like :meth:`catch_up`."""
        events = self.events()
        if self.store is None:
            return events
        last = events[-1] if events else None
        return events + [AuditEvent.model_validate_json(line) for line in
                         self._mirrored_lines(last.seq if last else 0, last.hash if last else GENESIS)]

    def restore_from_mirror(self) -> Path | None:
        """Rebuild the local log from the locked mirror (the first version of each event), after tampering.

        The mirror's events must form one valid keyed chain 1..N; the current local file is kept as
        ``<log>.damaged-<time>`` (returned; None when there was none). Raises AuditError when the mirror is
        empty or does not verify.
        """
        if self.store is None:
            raise AuditError(f"audit log {self.name}: no object store given, nothing to restore from")
        lines = self._mirrored_lines(0, GENESIS)
        if not lines:
            raise AuditError(f"audit log {self.name}: the locked mirror holds no events")
        kept = None
        with self._locked() as f:
            if self.path.stat().st_size:
                kept = self.path.with_name(f"{self.path.name}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%S%f}")
                f.seek(0)
                fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(f.read())
            f.truncate(0)
            f.write(b"\n".join(lines) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        return kept

    def verify(self) -> int:
        """Check the log end to end (see :meth:`check`); returns the number of events.

        Raises
        ------
        AuditError
            Naming the first bad event when anything does not verify.
        """
        rep = self.check()
        if not rep.ok:
            raise AuditError(f"{self.path}: {rep.problems[0]}")
        return rep.events


@contextlib.contextmanager
def write_ahead(audit: AuditLog | None, actor: str, action: str, subject: str,
                details: dict[str, Any] | None = None, undo: Any = None) -> Iterator[AuditEvent | None]:
    """Audit a change before it is made: append the event, then run the ``with`` body (the change).

    A failed append raises :class:`AuditWriteError` before the body runs, so nothing changes. When the body
    fails, ``undo()`` (if given) restores the previous state and an ``<action>.failed`` event records that
    the audited change did not take effect; the body's exception propagates. ``audit`` None: no audit.
    """
    ev = audit.append(actor, action, subject, details) if audit is not None else None
    try:
        yield ev
    except BaseException as e:
        if undo is not None:
            with contextlib.suppress(Exception):
                undo()
        if audit is not None and ev is not None:
            with contextlib.suppress(Exception):
                audit.append(actor, f"{action}.failed", subject, {"event": ev.seq, "error": str(e)[:300]})
        raise


def _seq_of(problem: str) -> int:
    """The event number a problem message starts with (for ordering), large when none."""
    parts = problem.split()
    for i, p in enumerate(parts[:-1]):
        if p in {"event", "anchor"} and parts[i + 1].rstrip(":").isdigit():
            return int(parts[i + 1].rstrip(":"))
    return 10**12
