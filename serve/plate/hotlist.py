"""The plate hotlist (stolen vehicles, warrants): entries, exact and fuzzy matching, expiry, audit, persistence.

Matching compares registrations (category + letters + number) with
:func:`serve.plate.distance.weighted_distance`, where swapping one letter of a look-alike pair (ผ/ฝ, ฎ/ฏ,
ข/ช, ...) costs 0.5 and any other edit 1. Each entry carries its own ``max_distance``: the default 0.5
accepts one look-alike misread and rejects two look-alike misreads or any other single error; an urgent
entry can allow 1.0. When both the entry and the read know the second line (province or region, e.g. เบตง) they
must agree (a region agrees with the province it lies in); a read whose second line was unreadable can still match
(flagged ``province_checked=False``). When both know the vehicle type (car / motorcycle) it must agree too, so the
same registration on a car and on a motorcycle are told apart.

Every change (add, remove, expiry purge) is appended to the shared audit log (:mod:`serve.audit`) before it
takes effect (write-ahead: a failed audit write changes nothing). The list
is persisted to a JSON file (atomic replace) and, when a store is given, to the versioned, object-locked
``evidence`` bucket, so a restart (or a fresh replica) reloads it from either. Each change's audit event records
the SHA-256 of the entries it writes (:mod:`serve.listdigest`); a fresh node refuses a store copy that is not the
latest audited state (one written with the store's credentials but no audited change).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from serve.audit import AuditLog, write_ahead
from serve.errors import ConflictError, NotFoundError
from serve.ids import RecordId
from serve.keys import write_private
from serve.listdigest import UnauditedListCopy, check_copy, seal, state_digest
from serve.plate.distance import weighted_distance
from serve.plate.parse import Plate, Vehicle, parse_plate, snap_line2
from serve.plate.provinces import REGIONS

DEFAULT_MAX_DISTANCE = 0.5


class HotlistError(ValueError):
    """A hotlist request is invalid (unknown entry, duplicate id, bad plate); the message says what."""


class HotlistEntryNotFound(HotlistError, NotFoundError):
    """No hotlist entry has that id."""


class HotlistConflict(HotlistError, ConflictError):
    """A hotlist entry with that id already exists."""


class HotlistEntry(BaseModel):
    """One hot-listed plate with why, who, until when and how fuzzy a match may be."""

    model_config = ConfigDict(extra="forbid")

    id: RecordId = Field(description="entry id (serve.ids: any printable characters, e.g. 'HL/2567/12')")
    plate: Plate
    reason: str = Field(min_length=1, max_length=200, description="e.g. 'stolen', 'warrant W-2026-0001'")
    added_by: str = Field(min_length=1)
    added_at: datetime
    expires_at: datetime | None = Field(default=None, description="UTC; None = until removed")
    max_distance: float = Field(default=DEFAULT_MAX_DISTANCE, ge=0.0, le=2.0,
                                description="largest weighted edit distance that still matches")
    note: str = ""

    @field_validator("added_at", "expires_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("times must be timezone-aware (UTC), e.g. 2026-12-31T00:00:00Z")
        return v

    def expired(self, now: datetime) -> bool:
        """True when the entry has an expiry at or before ``now``."""
        return self.expires_at is not None and self.expires_at <= now


class HotlistMatch(BaseModel):
    """A read plate matched to an entry: weighted distance 0 means an exact match."""

    entry: HotlistEntry
    distance: float
    exact: bool
    province_checked: bool = Field(description="False when the read had no province to compare")


class Hotlist:
    """A thread-safe hotlist persisted to ``path`` (and the store), every change audited.

    ``clock`` returns the current UTC time (injectable so expiry is testable without sleeping).
    ``purge_every_s``: :meth:`maybe_purge` deletes expired entries at most this often (None: only when
    :meth:`purge_expired` is called); the plate deployment calls it on load, on every use and on a timer.
    """

    def __init__(self, path: str | os.PathLike[str], audit: AuditLog, store: Any | None = None,
                 store_key: str = "hotlist/hotlist.json", clock: Callable[[], datetime] | None = None,
                 purge_every_s: float | None = 3600.0) -> None:
        """Load the list from ``path``, or from the store when the file is missing (a fresh node)."""
        self.purge_every_s = purge_every_s
        self._purged_at: float | None = None
        self.path = Path(path)
        self.audit = audit
        self.store = store
        self.store_key = store_key
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._entries: dict[str, HotlistEntry] = {}
        self._mtime: tuple[int, int, int] = (0, 0, 0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.reload()

    # ---- persistence -------------------------------------------------------------------------
    def reload(self) -> int:
        """Re-read the list from the file (or the store if there is no file); returns the entry count.

        The file is this node's own (written by its audited changes) and is loaded as it is. A copy from the
        store (a fresh node) must hold the latest state the audit log recorded (:func:`serve.listdigest.check_copy`,
        which first adds the locked mirror's events a fresh node's log lacks); a key that holds nothing is an
        empty list, valid only when no change was ever audited.

        Raises
        ------
        serve.listdigest.UnauditedListCopy
            The store copy (or its absence) is not the audited state: nothing is loaded.
        twin.objectstore.StoreError
            The store cannot be read.
        """
        with self._lock:
            raw: bytes | None = None
            if self.path.exists():
                raw = self.path.read_bytes()
                self._mtime = _stamp(self.path)
            elif self.store is not None:
                from twin.objectstore import EVIDENCE_BUCKET

                def read() -> tuple[str, bool, str | None]:
                    nonlocal raw
                    st = self.store.stat(EVIDENCE_BUCKET, self.store_key)
                    version = None if st is None else st.version_id
                    raw = None if st is None else self.store.get_bytes(EVIDENCE_BUCKET, self.store_key,
                                                                       version_id=version)
                    try:
                        state = list_state(json.loads(raw)) if raw else []
                    except (ValueError, AttributeError, TypeError) as e:
                        raise UnauditedListCopy(
                            f"s3://{self._list_key} (version {version}) is not a hotlist document ({e}): it was "
                            "written outside the platform and was not loaded. Run `ssz audit lists` to see which "
                            "versions an audited change wrote and copy the latest of them back") from e
                    return state_digest(state), not state, version

                check_copy(self.audit, self._list_key, read)
            entries = [HotlistEntry.model_validate(e) for e in json.loads(raw)["entries"]] if raw else []
            self._entries = {e.id: e for e in entries}
            return len(self._entries)

    @property
    def _list_key(self) -> str:
        from twin.objectstore import EVIDENCE_BUCKET

        return f"{EVIDENCE_BUCKET}/{self.store_key}"

    def refresh(self) -> bool:
        """Reload when another process changed the file since the last load; True when it reloaded."""
        try:
            m = _stamp(self.path)
        except FileNotFoundError:
            return False
        if m != self._mtime:
            self.reload()
            return True
        return False

    def _save(self) -> None:
        data = json.dumps({"version": 1, "saved_at": self.clock().isoformat(), "entries": _dumped(self._entries)},
                          ensure_ascii=False, indent=1).encode()
        write_private(self.path, data)
        self._mtime = _stamp(self.path)
        if self.store is not None:
            from twin.objectstore import EVIDENCE_BUCKET

            self.store.put_bytes(EVIDENCE_BUCKET, self.store_key, data, content_type="application/json")

    def _change(self, actor: str, action: str, subject: str, details: dict[str, Any],
                entries: dict[str, HotlistEntry]) -> None:
        """Make the list ``entries`` (memory, file and store), audited first as ``action`` with the digest of the
        state it writes (:func:`serve.listdigest.seal`); a failure half way puts the entries as they were back
        (memory, file and store) and is audited as ``<action>.failed`` (:func:`serve.audit.write_ahead`)."""
        before = dict(self._entries)

        def undo() -> None:
            self._entries = before
            self._save()

        with write_ahead(self.audit, actor, action, subject, undo=undo,
                         details=details | seal(self._list_key, list_state({"entries": _dumped(entries)}))):
            self._entries = entries
            self._save()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Serialise a change across threads and processes (replicas on one node share the file):
        hold the thread lock and an exclusive flock on ``<path>.lock``, and start from the latest file."""
        with self._lock, open(self.path.with_suffix(self.path.suffix + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.refresh()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ---- changes (audited) -------------------------------------------------------------------
    def add(self, plate: Plate | str, reason: str, actor: str, expires_at: datetime | None = None,
            max_distance: float = DEFAULT_MAX_DISTANCE, entry_id: str | None = None, note: str = "",
            vehicle: Vehicle | None = None) -> HotlistEntry:
        """Hot-list a plate (a Plate or text like '1กข 1234 ภูเก็ต', 'กขค 123 เบตง', '32-0394 สงขลา'); audited.

        ``vehicle`` ('car' / 'motorcycle') restricts matches to reads of that vehicle type (reads of unknown
        type still match). Raises HotlistError for an unparsable plate, a duplicate id or an expiry in the past.
        """
        if isinstance(plate, str):
            plate = _parse_entry_text(plate)
        if vehicle is not None:
            if vehicle not in ("car", "motorcycle"):
                raise HotlistError(f"vehicle must be 'car' or 'motorcycle', got {vehicle!r}")
            plate = plate.model_copy(update={"vehicle": vehicle})
        now = self.clock()
        if expires_at is not None and expires_at.tzinfo is not None and expires_at <= now:
            raise HotlistError(f"expires_at {expires_at.isoformat()} is already past; give a future UTC time")
        with self._writing():
            eid = entry_id or f"H-{uuid.uuid4().hex[:12]}"
            if eid in self._entries:
                raise HotlistConflict(f"hotlist entry {eid} already exists; remove it first or use another id")
            try:
                entry = HotlistEntry(id=eid, plate=plate, reason=reason, added_by=actor, added_at=now,
                                     expires_at=expires_at, max_distance=max_distance, note=note)
            except ValueError as e:
                raise HotlistError(f"invalid hotlist entry: {e}") from e
            self._change(actor, "hotlist.add", eid, {
                "plate": plate.text, "vehicle": plate.vehicle, "reason": reason, "max_distance": max_distance,
                "expires_at": expires_at.isoformat() if expires_at else None}, self._entries | {eid: entry})
            return entry

    def remove(self, entry_id: str, actor: str, reason: str = "") -> HotlistEntry:
        """Remove an entry for real (it is gone from the file and the next store version); audited."""
        with self._writing():
            entry = self._entries.get(entry_id)
            if entry is None:
                raise HotlistEntryNotFound(f"no hotlist entry {entry_id!r}")
            self._change(actor, "hotlist.remove", entry_id, {"plate": entry.plate.text, "reason": reason},
                         {k: v for k, v in self._entries.items() if k != entry_id})
            return entry

    def purge_expired(self, actor: str = "system:expiry") -> list[HotlistEntry]:
        """Delete entries whose expiry has passed (each audited as 'hotlist.expire'); returns them."""
        now = self.clock()
        with self._writing():
            gone = [e for e in self._entries.values() if e.expired(now)]
            if not gone:
                return []
            for e in gone:
                self._change(actor, "hotlist.expire", e.id, {
                    "plate": e.plate.text, "expired_at": e.expires_at.isoformat() if e.expires_at else None},
                    {k: v for k, v in self._entries.items() if k != e.id})
            return gone

    def maybe_purge(self, actor: str = "system:expiry") -> list[HotlistEntry]:
        """:meth:`purge_expired` when it never ran or ran ``purge_every_s`` ago (monotonic clock); else nothing.

        Raises the audit log's UnavailableError when the expiry cannot be audited (nothing is deleted then).
        """
        every = self.purge_every_s
        now = time.monotonic()
        if every is None or (self._purged_at is not None and now - self._purged_at < every):
            return []
        gone = self.purge_expired(actor)
        self._purged_at = now
        return gone

    # ---- queries -------------------------------------------------------------------------------
    def get(self, entry_id: str) -> HotlistEntry:
        """One entry by id (HotlistError when unknown)."""
        with self._lock:
            if entry_id not in self._entries:
                raise HotlistEntryNotFound(f"no hotlist entry {entry_id!r}")
            return self._entries[entry_id]

    def entries(self, include_expired: bool = False) -> list[HotlistEntry]:
        """All entries (active only unless ``include_expired``), oldest first."""
        now = self.clock()
        with self._lock:
            es = [e for e in self._entries.values() if include_expired or not e.expired(now)]
        return sorted(es, key=lambda e: e.added_at)

    def __len__(self) -> int:
        """Number of stored entries (including expired ones not yet purged)."""
        return len(self._entries)

    def match(self, plate: Plate, now: datetime | None = None) -> list[HotlistMatch]:
        """Active entries within their ``max_distance`` of ``plate``, closest first.

        Expired entries never match. A second-line (province / region) or vehicle-type disagreement, both
        sides known, rejects the entry.
        """
        now = now or self.clock()
        out: list[HotlistMatch] = []
        with self._lock:
            entries = list(self._entries.values())
        for e in entries:
            if e.expired(now):
                continue
            checked = e.plate.line2 is not None and plate.line2 is not None
            if checked and not _same_line2(e.plate.line2, plate.line2):
                continue
            if e.plate.vehicle and plate.vehicle and e.plate.vehicle != plate.vehicle:
                continue
            d = weighted_distance(plate.key, e.plate.key)
            if d <= e.max_distance + 1e-9:
                out.append(HotlistMatch(entry=e, distance=d, exact=d == 0, province_checked=checked))
        return sorted(out, key=lambda m: m.distance)


def list_state(doc: dict[str, Any]) -> list[Any]:
    """The state of a hotlist document (a saved copy, parsed JSON) that its audit digest covers: the entries
    as written, ordered by id (not its ``saved_at``)."""
    return sorted(doc.get("entries", []), key=lambda e: str(e.get("id")))


def _dumped(entries: dict[str, HotlistEntry]) -> list[Any]:
    """Entries as a saved copy holds them: in the order they were added (expiry purges them in that order)."""
    return [e.model_dump(mode="json") for e in entries.values()]


def _same_line2(a: str | None, b: str | None) -> bool:
    """Whether two second lines agree: equal, or a region line and the province it lies in (เบตง, ยะลา)."""
    return a == b or REGIONS.get(a or "") == b or REGIONS.get(b or "") == a


def _parse_entry_text(text: str) -> Plate:
    """Parse an officer's plate text: registration then optional province, on one line or two; or the rows of the
    plate in the order they are printed, the province before the number (a motorcycle plate's three rows,
    '1กข ภูเก็ต 123' or one row a line) or first ('ภูเก็ต กข 1234')."""
    t = text.strip()
    if "\n" not in t:
        parts = t.split()
        # '1กข 1234 ภูเก็ต' -> registration = tokens up to the last all-digit token
        idx = max((i for i, p in enumerate(parts) if any(c.isdigit() for c in p)), default=-1)
        if idx >= 0 and idx < len(parts) - 1:
            t = " ".join(parts[: idx + 1]) + "\n" + " ".join(parts[idx + 1:])
    try:
        return parse_plate(t)
    except ValueError as e:
        reordered = _printed_order(text)
        if reordered is None:
            raise HotlistError(str(e)) from e
        return reordered


def _printed_order(text: str) -> Plate | None:
    """The plate of ``text`` written with the second line (a province or region, one word) before or inside the
    registration, as a motorcycle plate prints it between the letters and the number; None when no word of it is
    a second line that leaves a registration."""
    parts = text.split()
    for k, word in enumerate(parts):
        if any(c.isdigit() for c in word) or k == len(parts) - 1:
            continue
        province, region, _ = snap_line2(word, max_ratio=0.25)
        if province is None and region is None:
            continue
        try:
            return parse_plate(" ".join(parts[:k] + parts[k + 1:]), word)
        except ValueError:
            continue
    return None


def _stamp(path: Path) -> tuple[int, int, int]:
    """(mtime ns, size, inode) of the hotlist file: changes whenever another process replaced it."""
    st = path.stat()
    return st.st_mtime_ns, st.st_size, st.st_ino
