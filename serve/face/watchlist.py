"""The arrest-warrant watchlist: enrolled face embeddings of wanted people, 1:N search, persisted and audited.

Rules it enforces (the product's privacy and legal contract):

- Only enrolled people's embeddings are held or written. :meth:`Watchlist.search` never stores, persists or logs
  the probe embeddings it is given; a probe that matches nobody leaves no trace.
- Expired warrants (``expires`` before today) stop matching at once, without waiting for a clean-up.
- :meth:`Watchlist.remove` is real removal: the person's embeddings leave memory and the persisted copies (the
  local file is atomically replaced; in the object store any older versions of the watchlist object are deleted).
- Every change (enrol, update, remove, expiry purge) is appended to the keyed, mirrored audit log
  (:class:`serve.audit.AuditLog`) with who did it *before* it takes effect (a failed audit write changes
  nothing); the log holds record fields, never embeddings.

Concurrency: changes hold a lock (in-process, plus ``flock`` on ``<file>.lock`` for replicas sharing a local
file) and reload the persisted copy first; searches reload when the copy changed (checked every ``refresh_s``).
Replicas that share only the object store have no cross-host lock: send management calls (enrol, update,
remove) to one replica or serialise them in the caller; searches on all replicas follow within ``refresh_s``.

Persistence: one JSON document (records + base64 float32 embeddings, tagged with the engine and dimension) in a
local file and/or the ``models`` bucket of the object store (``watchlist/<name>-<engine>.json``). A restarted
service reloads it; replicas that share the store pick up other replicas' changes via :meth:`Watchlist.refresh`.
Embeddings from different engines are not comparable, so a watchlist refuses a file written by another engine.
With an audit log, each change's event records the SHA-256 of the list state it writes (:mod:`serve.listdigest`;
a digest, never embeddings) and a store copy that is not the latest audited state is refused on load.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from serve.audit import AuditLog, write_ahead
from serve.errors import ConflictError, NotFoundError
from serve.face.embed import FaceEmbedder
from serve.face.schemas import Candidate, WarrantRecord
from serve.keys import write_private
from serve.listdigest import check_copy, seal, state_digest

FORMAT_VERSION = 1


class WatchlistError(ValueError):
    """A watchlist request cannot be done (unknown warrant, duplicate, wrong engine); the message says why."""


class WarrantNotFound(WatchlistError, NotFoundError):
    """The warrant is not on the watchlist."""


class WarrantConflict(WatchlistError, ConflictError):
    """The warrant is already enrolled."""


LIST_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"


def check_list_name(name: str) -> str:
    """``name`` when it is a valid list name (lower-case letters, digits, '-', up to 32), else WatchlistError."""
    import re

    if not re.fullmatch(LIST_NAME_PATTERN, name or ""):
        raise WatchlistError(f"list name {name!r} is not valid: use 1-32 lower-case letters, digits or '-', "
                             "e.g. sim-hatyai")
    return name


def list_state(doc: dict[str, Any]) -> dict[str, Any]:
    """The state of a watchlist document (a saved copy, parsed JSON) that its audit digest covers: the engine,
    the dimension and the records with their embeddings as written, by warrant number (not its save time)."""
    recs = sorted(doc.get("records", []), key=lambda r: str(r.get("record", {}).get("warrant_no")))
    return {"engine": doc.get("engine"), "dim": doc.get("dim"), "records": recs}


def _today() -> date:
    return datetime.now(UTC).date()


class Watchlist:
    """Warrant records with their face embeddings for one embedding engine; thread-safe."""

    def __init__(self, embedder: FaceEmbedder, path: str | os.PathLike[str] | None = None,
                 store: Any | None = None, audit: AuditLog | None = None, name: str = "warrants",
                 bucket: str | None = None, clock: Callable[[], date] = _today, refresh_s: float = 5.0) -> None:
        """Open (or start) the watchlist named ``name`` for ``embedder``'s engine.

        ``path``: local JSON file; ``store``: a twin.objectstore.Store to persist to (``bucket``, default
        ``models``); with both, the store copy is the shared truth and the file a local copy. ``audit`` receives
        every change. ``clock`` gives today's date (tests and the evaluation may pin it).
        """
        from twin.objectstore import MODELS_BUCKET

        self.embedder = embedder
        self.name = name
        self.path = Path(path) if path else None
        self.store = store
        self.bucket = bucket or MODELS_BUCKET
        self.key = f"watchlist/{name}-{embedder.name}.json"
        self.audit = audit
        self.clock = clock
        self.refresh_s = refresh_s
        self._lock = threading.RLock()
        self._records: dict[str, WarrantRecord] = {}
        self._emb: dict[str, np.ndarray] = {}
        self._matrix: np.ndarray = np.zeros((0, embedder.dim), dtype=np.float32)
        self._owners: list[str] = []
        self._seen: tuple[object, object] = (None, None)
        self._checked = 0.0
        self.reload()

    # ---------------------------------------------------------------- persistence
    def _document(self, records: dict[str, WarrantRecord], emb: dict[str, np.ndarray]) -> dict[str, Any]:
        """The saved form of ``records`` with their embeddings (parsed JSON); :func:`list_state` of it is what
        the audit digest covers."""
        recs = []
        for wn in sorted(records):
            e = emb[wn].astype("<f4")
            recs.append({"record": records[wn].model_dump(mode="json"), "n": int(e.shape[0]),
                         "embeddings": base64.b64encode(e.tobytes()).decode()})
        return {"format": FORMAT_VERSION, "name": self.name, "engine": self.embedder.name, "dim": self.embedder.dim,
                "saved": datetime.now(UTC).isoformat(), "records": recs}

    @property
    def _list_key(self) -> str:
        return f"{self.bucket}/{self.key}"

    def _parse(self, data: bytes, where: str) -> tuple[dict[str, WarrantRecord], dict[str, np.ndarray]]:
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise WatchlistError(f"{where}: not a watchlist document ({e})") from e
        if doc.get("engine") != self.embedder.name or doc.get("dim") != self.embedder.dim:
            raise WatchlistError(f"{where} holds {doc.get('engine')} embeddings ({doc.get('dim')}-d) but this service "
                                 f"uses {self.embedder.name} ({self.embedder.dim}-d): re-enrol with this engine")
        recs, embs = {}, {}
        for item in doc.get("records", []):
            r = WarrantRecord.model_validate(item["record"])
            e = np.frombuffer(base64.b64decode(item["embeddings"]), dtype="<f4").reshape(item["n"], self.embedder.dim)
            recs[r.warrant_no] = r
            embs[r.warrant_no] = e.astype(np.float32)
        return recs, embs

    def _remote_etag(self) -> str | None:
        if self.store is None:
            return None
        try:
            st = self.store.stat(self.bucket, self.key)
        except Exception:
            return None
        return None if st is None else st.etag

    def _version(self) -> tuple[object, object]:
        """What identifies the persisted copies now: the store object's etag and the file's mtime and size."""
        st = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                s = self.path.stat()
                st = (s.st_mtime_ns, s.st_size)
        return (self._remote_etag(), st)

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the in-process lock and, with a local file, an exclusive file lock (replicas on one host)."""
        with self._lock:
            if self.path is None:
                yield
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(self.path.name + ".lock"), "a") as lf:
                fcntl.flock(lf.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lf.fileno(), fcntl.LOCK_UN)

    def reload(self) -> None:
        """Load the persisted watchlist (store first, then the local file); empty when neither exists.

        The local file is this node's own and is loaded as it is. With an audit log, a copy from the store (and
        an empty list when neither holds one) must be the latest state the audit log recorded
        (:func:`serve.listdigest.check_copy`, which first adds the locked mirror's events the local log lacks: a
        fresh node, another replica's change); without an audit log nothing is audited and nothing is checked.

        Raises
        ------
        serve.listdigest.UnauditedListCopy
            The store copy is not the audited state: nothing is loaded (the list in memory stays as it was).
        WatchlistError
            A copy is not a watchlist document of this engine.
        """
        with self._lock:
            seen = self._version()
            recs: dict[str, WarrantRecord] = {}
            embs: dict[str, np.ndarray] = {}
            store = self.store

            def read() -> tuple[str, bool, str | None]:
                nonlocal recs, embs
                st = store.stat(self.bucket, self.key)
                version = None if st is None else st.version_id
                recs, embs = ({}, {}) if st is None else self._parse(
                    store.get_bytes(self.bucket, self.key, version_id=version), f"s3://{self.bucket}/{self.key}")
                return state_digest(list_state(self._document(recs, embs))), not recs, version

            if seen[0] is None and self.path is not None and self.path.exists():  # no store copy: the own file
                recs, embs = self._parse(self.path.read_bytes(), str(self.path))
            elif store is not None and self.audit is not None:
                check_copy(self.audit, self._list_key, read)
            elif store is not None and seen[0] is not None:
                read()
            self._records, self._emb = recs, embs
            self._seen = seen  # only now: a refused copy is tried (and refused) again at the next refresh
            self._rebuild()
            self._checked = time.monotonic()

    def refresh(self, force: bool = False) -> bool:
        """Reload when another replica changed the store copy or the file (checked at most every ``refresh_s``)."""
        if self.store is None and self.path is None:
            return False
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_s:
            return False
        self._checked = now
        if self._version() != self._seen:
            self.reload()
            return True
        return False

    def _save(self) -> None:
        data = json.dumps(self._document(self._records, self._emb), ensure_ascii=False, indent=None).encode()
        if self.path is not None:
            write_private(self.path, data)
        if self.store is not None:
            self.store.put_bytes(self.bucket, self.key, data, content_type="application/json")
            self._purge_old_versions()
        self._seen = self._version()

    def _purge_old_versions(self) -> None:
        """On a versioned bucket, delete every non-current version so removed embeddings do not linger (an
        unversioned bucket lists one version, ``'null'``, which is the current one)."""
        from twin.objectstore import is_latest

        store = self.store
        assert store is not None
        for obj in store.key_versions(self.bucket, self.key):
            if obj.version_id != "null" and not is_latest(obj):
                store.client.remove_object(self.bucket, self.key, version_id=obj.version_id)

    def _rebuild(self) -> None:
        owners, mats = [], []
        for wn, e in self._emb.items():
            owners += [wn] * len(e)
            mats.append(e)
        self._owners = owners
        self._matrix = np.concatenate(mats) if mats else np.zeros((0, self.embedder.dim), dtype=np.float32)

    def _change(self, actor: str, action: str, subject: str, details: dict[str, Any],
                records: dict[str, WarrantRecord], emb: dict[str, np.ndarray]) -> None:
        """Make the list ``records`` with ``emb`` (memory, file, store), audited first as ``action`` with the
        digest of the state it writes (:func:`serve.listdigest.seal`; never the embeddings): AuditWriteError
        changes nothing. A change that fails half way puts the list as it was back (memory, file and store)
        and is audited as ``<action>.failed`` (:func:`serve.audit.write_ahead`)."""
        before = (self._records, self._emb)

        def undo() -> None:
            self._records, self._emb = before
            self._rebuild()
            self._save()

        if self.audit is not None:
            details = details | seal(self._list_key, list_state(self._document(records, emb)))
        with write_ahead(self.audit, actor, action, subject, details, undo=undo):
            self._records, self._emb = records, emb
            self._rebuild()
            self._save()

    # ---------------------------------------------------------------- changes
    def add(self, record: WarrantRecord, embeddings: np.ndarray, actor: str) -> WarrantRecord:
        """Enrol one person with 1..n face embeddings (one per photo); audited as ``enrol``."""
        e = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        if e.shape[0] < 1 or e.shape[1] != self.embedder.dim or not np.all(np.isfinite(e)):
            raise WatchlistError(f"enrolment of {record.warrant_no} needs 1..n finite {self.embedder.dim}-d "
                                 f"embeddings, got shape {e.shape}")
        with self._changing():
            self.refresh(force=True)
            if record.warrant_no in self._records:
                raise WarrantConflict(f"warrant {record.warrant_no} is already enrolled: remove it first or update it")
            rec = record.model_copy(update={"photos": int(e.shape[0])})
            self._change(actor, "enrol", rec.warrant_no, {
                "name": rec.name, "court": rec.court, "offence": rec.offence, "expires": rec.expires.isoformat(),
                "photos": rec.photos, "engine": self.embedder.name, "watchlist": self.name},
                self._records | {rec.warrant_no: rec}, self._emb | {rec.warrant_no: e.copy()})
            return rec

    def update(self, warrant_no: str, actor: str, **fields: Any) -> WarrantRecord:
        """Change record fields (e.g. a renewed ``expires``); audited as ``update`` with old and new values."""
        with self._changing():
            self.refresh(force=True)
            old = self.get(warrant_no)
            bad = set(fields) - {"name", "court", "offence", "expires"}
            if bad:
                raise WatchlistError(f"cannot update {sorted(bad)}: only name, court, offence and expires change")
            new = WarrantRecord.model_validate({**old.model_dump(), **fields})
            changes = {k: {"old": str(getattr(old, k)), "new": str(getattr(new, k))} for k in fields}
            self._change(actor, "update", warrant_no, {"changes": changes, "watchlist": self.name},
                         self._records | {warrant_no: new}, self._emb)
            return new

    def remove(self, warrant_no: str, actor: str, reason: str = "") -> WarrantRecord:
        """Remove a person and all their embeddings from memory and persistence; audited as ``remove``."""
        with self._changing():
            self.refresh(force=True)
            rec = self.get(warrant_no)
            self._change(actor, "remove", warrant_no, {"reason": reason, "photos": rec.photos, "watchlist": self.name},
                         *self._without(warrant_no))
            return rec

    def purge_expired(self, actor: str = "system:expiry") -> list[str]:
        """Remove every warrant whose expiry date has passed, with its embeddings; each removal audited.

        Expired warrants already stop matching; this also deletes their data. Safe to run on every replica.
        """
        today = self.clock()
        with self._changing():
            self.refresh(force=True)
            gone = [r for r in self._records.values() if not r.active(today)]
            if not gone:
                return []
            for r in gone:
                self._change(actor, "remove", r.warrant_no, {"reason": f"expired on {r.expires.isoformat()}",
                                                             "photos": r.photos, "watchlist": self.name},
                             *self._without(r.warrant_no))
        return sorted(r.warrant_no for r in gone)

    def _without(self, warrant_no: str) -> tuple[dict[str, WarrantRecord], dict[str, np.ndarray]]:
        """The records and embeddings with one warrant left out (the list after its removal)."""
        return ({k: v for k, v in self._records.items() if k != warrant_no},
                {k: v for k, v in self._emb.items() if k != warrant_no})

    # ---------------------------------------------------------------- queries
    def get(self, warrant_no: str) -> WarrantRecord:
        """The record of one warrant; WatchlistError when it is not enrolled."""
        try:
            return self._records[warrant_no]
        except KeyError:
            raise WarrantNotFound(f"warrant {warrant_no!r} is not on the watchlist") from None

    def records(self, include_expired: bool = True) -> list[WarrantRecord]:
        """All records sorted by warrant number (optionally only active ones); follows other replicas' changes."""
        self.refresh()
        today = self.clock()
        return [r for _, r in sorted(self._records.items()) if include_expired or r.active(today)]

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, warrant_no: object) -> bool:
        return warrant_no in self._records

    def search(self, embeddings: np.ndarray, top_k: int = 5, on: date | None = None) -> list[list[Candidate]]:
        """1:N search: for each probe, up to ``top_k`` active warrants by distance (best first, score > 0).

        A candidate's ``match`` is true when its distance is within the engine threshold. Probes are used in
        memory only: nothing about them is stored, persisted or logged.
        """
        q = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        if q.shape[0] == 0:
            return []
        self.refresh()
        today = on or self.clock()
        with self._lock:
            matrix, owners, records = self._matrix, list(self._owners), dict(self._records)
        active = np.array([records[o].active(today) for o in owners], dtype=bool)
        if not active.any():
            return [[] for _ in range(q.shape[0])]
        idx = np.flatnonzero(active)
        d = self.embedder.distance(q, matrix[idx])
        owner_ids = [owners[i] for i in idx]
        out: list[list[Candidate]] = []
        thr, limit = self.embedder.threshold, 2.0 * self.embedder.threshold
        for row in d:
            best: dict[str, float] = {}
            for wn, dist in zip(owner_ids, row.tolist(), strict=True):
                if dist < best.get(wn, np.inf):
                    best[wn] = dist
            ranked = sorted((v, k) for k, v in best.items() if v < limit)[:top_k]
            out.append([
                Candidate(warrant_no=wn, name=records[wn].name, court=records[wn].court, offence=records[wn].offence,
                          expires=records[wn].expires, distance=float(dist), score=float(self.embedder.score(dist)),
                          match=bool(dist <= thr))
                for dist, wn in ranked
            ])
        return out
