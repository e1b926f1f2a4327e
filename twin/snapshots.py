"""Versioned snapshots of a city's twin in the object store: immutable Parquet objects plus a manifest written last.

Layout in the ``twin`` bucket (``<p>`` = ``snapshots/<city>``)::

    <p>/data/<write-id>/<layer>.parquet     one object per layer, written first, never changed
    <p>/manifests/<seq>.json                the commit: seq is a zero-padded counter 0000000001, 0000000002, ...

A snapshot exists once its manifest exists, and the manifest is created only after every object it names
is stored, so a reader sees a whole snapshot or the one before it, never half of one. The manifest is
created with ``If-None-Match: *`` (a conditional create that MinIO and the SeaweedFS server here honour):
of two writers that race for the same sequence number exactly one wins; the other gets
``PreconditionFailed``, re-reads the head and commits as the next number. Data objects live under a
per-write random id, so writers never touch each other's objects, and the history stays linear (each
manifest names its parent). A layer that did not change since the parent (same bytes) is not uploaded
again: the manifest points at the parent's object.

Time travel: :meth:`SnapshotStore.open` takes an id or ``as_of`` (a datetime or ISO string) and returns the
newest snapshot whose ``as_of`` time (by default its commit time) is not after it. :meth:`diff` compares
two snapshots layer by layer on each layer's primary key (:data:`twin.schemas.KEYS`). :meth:`retain`
keeps the newest N and/or those newer than a cutoff, deletes the other manifests first and then the data
objects no kept manifest references (only those older than a grace period, so an in-flight write is safe).

Why not Delta Lake (evaluated here with ``deltalake`` 1.6.6 against the SeaweedFS S3 server): it works,
including six concurrent appends to one table with ``conditional_put=etag``. But a Delta table versions
ONE table, and the twin is eleven layers that must move together: a cross-layer snapshot would still need
a manifest mapping layers to table versions, i.e. this module on top of Delta. Its transaction log also
makes every reader (kepler.gl notebooks, pandas, DuckDB) go through a Delta reader and adds a second
storage engine with its own credentials handling, while here a snapshot is plain GeoParquet-compatible
Parquet plus one JSON file, and the one conditional create gives the same commit guarantee.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from pydantic import BaseModel, Field
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from twin.layers import TwinState
from twin.objectstore import TWIN_BUCKET, Store, StoreError, explain
from twin.schemas import KEYS, LAYERS, schema

SEQ_DIGITS = 10


class LayerRef(BaseModel):
    """One layer of a snapshot: its object, row count, size and content hash."""

    key: str
    rows: int
    bytes: int
    sha256: str


class Manifest(BaseModel):
    """The commit record of one snapshot (``manifests/<id>.json``)."""

    id: str
    seq: int
    city: str
    created: dt.datetime = Field(description="commit time (UTC)")
    as_of: dt.datetime = Field(description="the time the snapshot describes; defaults to the commit time")
    parent: str | None = None
    message: str = ""
    author: str | None = None
    write_id: str
    layers: dict[str, LayerRef]


class SnapshotConflict(StoreError):
    """A commit lost the race for a sequence number too many times in a row."""


@dataclass
class Snapshot:
    """An opened snapshot: its manifest and lazily read layer tables."""

    manifest: Manifest
    _store: SnapshotStore
    _cache: dict[str, pa.Table] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The snapshot id (zero-padded sequence number)."""
        return self.manifest.id

    def table(self, layer: str) -> pa.Table:
        """One layer as an Arrow table (empty table when the snapshot does not hold the layer)."""
        if layer not in self._cache:
            ref = self.manifest.layers.get(layer)
            self._cache[layer] = schema(layer).empty_table() if ref is None else self._store.read_layer(ref)
        return self._cache[layer]

    def tables(self) -> dict[str, pa.Table]:
        """Every layer of the snapshot (read in parallel)."""
        todo = [n for n in self.manifest.layers if n not in self._cache]
        with ThreadPoolExecutor(8) as ex:
            for n, t in zip(todo, ex.map(lambda n: self._store.read_layer(self.manifest.layers[n]), todo),
                            strict=True):
                self._cache[n] = t
        return {n: self.table(n) for n in self.manifest.layers}

    def state(self) -> TwinState:
        """The snapshot as an in-memory :class:`TwinState` to append to and commit as the next snapshot."""
        return TwinState(self.manifest.city, self.tables())


@dataclass
class LayerDiff:
    """Rows added, removed and changed in one layer between two snapshots (matched on the layer key)."""

    layer: str
    added: pa.Table
    removed: pa.Table
    changed: pa.Table  # the new version of each changed row

    def counts(self) -> dict[str, int]:
        """{"added": n, "removed": n, "changed": n}."""
        return {"added": self.added.num_rows, "removed": self.removed.num_rows, "changed": self.changed.num_rows}


@dataclass
class SnapshotDiff:
    """Per-layer differences from snapshot ``old`` to snapshot ``new``."""

    old: str
    new: str
    layers: dict[str, LayerDiff]

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts per layer, only for layers that differ."""
        return {n: d.counts() for n, d in self.layers.items() if any(d.counts().values())}


class RetentionReport(BaseModel):
    """What :meth:`SnapshotStore.retain` kept and deleted."""

    kept: list[str]
    deleted: list[str]
    objects_deleted: int
    dry_run: bool


def _parse_time(t: dt.datetime | str, tz: str) -> dt.datetime:
    if isinstance(t, str):
        try:
            t = dt.datetime.fromisoformat(t)
        except ValueError:
            raise ValueError(f"as_of {t!r} is not an ISO time such as '2021-12-01 08:00'") from None
    if t.tzinfo is None:
        from zoneinfo import ZoneInfo

        t = t.replace(tzinfo=ZoneInfo(tz))
    return t.astimezone(dt.UTC)


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _row_fingerprints(t: pa.Table, keys: tuple[str, ...]) -> dict[tuple[Any, ...], tuple[int, str]]:
    """{key tuple: (row index, digest of the other columns)}; a repeated key keeps its last row."""
    others = [c for c in t.column_names if c not in keys]
    kcols = [t.column(k).to_pylist() for k in keys]
    ocols = [t.column(c).to_pylist() for c in others]
    out: dict[tuple[Any, ...], tuple[int, str]] = {}
    for i in range(t.num_rows):
        vals = json.dumps([c[i] for c in ocols], default=str, ensure_ascii=False)
        out[tuple(c[i] for c in kcols)] = (i, hashlib.blake2b(vals.encode(), digest_size=12).hexdigest())
    return out


class SnapshotStore:
    """The snapshots of one city's twin in an S3 bucket."""

    def __init__(self, store: Store, city: str, bucket: str = TWIN_BUCKET, prefix: str = "snapshots"):
        self.store = store
        self.city = city
        self.bucket = bucket
        self.base = f"{prefix}/{city}"
        self._manifests: dict[str, Manifest] = {}  # immutable once written: safe to cache
        self._cas_checked = False

    # ---- low level ---------------------------------------------------------------------------------
    def _manifest_key(self, seq: int) -> str:
        return f"{self.base}/manifests/{seq:0{SEQ_DIGITS}d}.json"

    def _create_if_absent(self, key: str, data: bytes) -> bool:
        """Create an object only if no object has that key (S3 ``If-None-Match: *``); False if it exists."""
        try:
            self.store.client._put_object(  # minio's public put_object cannot send conditional headers
                self.bucket, key, data,
                headers={"If-None-Match": "*", "Content-Type": "application/json", "Content-Length": str(len(data))})
        except S3Error as e:
            if e.code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                return False
            raise explain(e, self.store.settings) from e
        except Exception as e:
            raise explain(e, self.store.settings) from e
        return True

    def check_conditional_writes(self) -> None:
        """Fail clearly if the S3 server ignores ``If-None-Match`` (two writers could then overwrite a commit)."""
        if self._cas_checked:
            return
        key = f"{self.base}/.cas-probe-{uuid.uuid4().hex}"
        try:
            first = self._create_if_absent(key, b"1")
            second = self._create_if_absent(key, b"2")
        finally:
            self._remove_all_versions([key])
        if not first or second:
            raise StoreError(f"the S3 server at {self.store.settings.endpoint} ignores conditional writes "
                             "(If-None-Match: *): snapshots need it for safe concurrent commits. Use MinIO "
                             "RELEASE.2024-11 or newer, or the embedded SeaweedFS store")
        self._cas_checked = True

    def _list(self, prefix: str) -> list[str]:
        try:
            return [o.object_name for o in self.store.client.list_objects(self.bucket, prefix=prefix, recursive=True)]
        except Exception as e:
            raise explain(e, self.store.settings) from e

    def _remove_all_versions(self, keys: list[str]) -> int:
        """Delete objects with every stored version (the twin bucket is versioned); returns versions deleted."""
        dels: list[DeleteObject] = []
        for k in keys:
            try:
                vers = list(self.store.client.list_objects(self.bucket, prefix=k, include_version=True))
            except Exception as e:
                raise explain(e, self.store.settings) from e
            dels += [DeleteObject(o.object_name, o.version_id) for o in vers if o.object_name == k]
            if not vers:
                dels.append(DeleteObject(k))
        errors = list(self.store.client.remove_objects(self.bucket, dels)) if dels else []
        if errors:
            raise StoreError(f"could not delete {len(errors)} object versions: {errors[0]}")
        return len(dels)

    def read_layer(self, ref: LayerRef) -> pa.Table:
        """Read one layer object and check its content hash (a damaged object fails loudly)."""
        data = self.store.get_bytes(self.bucket, ref.key)
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise StoreError(f"snapshot object {ref.key} does not match its manifest hash: the object was altered")
        return pq.read_table(io.BytesIO(data))

    # ---- reading -----------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        """Committed snapshot ids, oldest first."""
        keys = self._list(f"{self.base}/manifests/")
        return sorted(k.rsplit("/", 1)[1].removesuffix(".json") for k in keys if k.endswith(".json"))

    def manifest(self, snapshot_id: str | int) -> Manifest:
        """The manifest of a snapshot by id (``12`` or ``"0000000012"``)."""
        sid = f"{int(snapshot_id):0{SEQ_DIGITS}d}"
        if sid not in self._manifests:
            try:
                raw = self.store.get_bytes(self.bucket, self._manifest_key(int(sid)))
            except StoreError as e:
                raise StoreError(f"no snapshot {sid} of city {self.city!r} ({e}); `ssz twin snapshot list` "
                                 "shows the ids") from e
            self._manifests[sid] = Manifest.model_validate_json(raw)
        return self._manifests[sid]

    def list(self) -> list[Manifest]:
        """Manifests of all committed snapshots, oldest first."""
        ids = self.ids()
        with ThreadPoolExecutor(8) as ex:
            return list(ex.map(self.manifest, ids))

    def latest(self) -> Manifest | None:
        """The newest committed snapshot's manifest, or None when there is none."""
        ids = self.ids()
        return self.manifest(ids[-1]) if ids else None

    def resolve(self, snapshot_id: str | int | None = None, as_of: dt.datetime | str | None = None,
                tz: str = "UTC") -> Manifest:
        """The manifest for an id, for a time (newest with ``as_of`` <= the time), or the latest."""
        if snapshot_id is not None:
            return self.manifest(snapshot_id)
        mans = self.list()
        if not mans:
            raise StoreError(f"city {self.city!r} has no snapshots yet: create one with `ssz twin snapshot create`")
        if as_of is None:
            return mans[-1]
        t = _parse_time(as_of, tz)
        before = [m for m in mans if m.as_of <= t]
        if not before:
            raise StoreError(f"no snapshot of {self.city!r} as of {t.isoformat()}: the oldest is "
                             f"{mans[0].id} as of {mans[0].as_of.isoformat()}")
        return max(before, key=lambda m: (m.as_of, m.seq))

    def open(self, snapshot_id: str | int | None = None, as_of: dt.datetime | str | None = None,
             tz: str = "UTC") -> Snapshot:
        """Open a snapshot by id, by time (``as_of``, naive times read in ``tz``) or the latest."""
        return Snapshot(self.resolve(snapshot_id, as_of, tz), self)

    # ---- writing -----------------------------------------------------------------------------------
    def create(self, tables: Mapping[str, pa.Table] | TwinState, message: str = "",
               as_of: dt.datetime | str | None = None, author: str | None = None, tz: str = "UTC",
               before_commit: Callable[[], None] | None = None, max_retries: int = 50,
               expect_parent: str | None = None) -> Manifest:
        """Write the layers and commit them as the next snapshot; returns its manifest.

        Layers are cast to their schema (a table that does not fit fails before anything is written).
        Unchanged layers reuse the parent's objects. ``before_commit`` runs after the data objects are
        stored and before the manifest is created (progress reporting; tests use it to read mid-write).

        A snapshot is a whole state, so of two writers that each read snapshot N, changed it and committed,
        the later commit (N+2) does not hold the earlier one's changes (N+1 keeps them in the history).
        A read-modify-write caller passes ``expect_parent`` (the id it read; ``""`` for "no snapshot yet"):
        the commit then fails with :class:`SnapshotConflict` instead of landing after another writer's, and
        the caller re-reads and retries.
        """
        self.check_conditional_writes()
        src = tables.tables() if isinstance(tables, TwinState) else dict(tables)
        unknown = [n for n in src if n not in LAYERS]
        if unknown:
            raise KeyError(f"unknown twin layer(s) {unknown}: known layers are {', '.join(LAYERS)}")
        casted = {}
        for n, t in src.items():
            try:
                casted[n] = t.select(schema(n).names).cast(schema(n))
            except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
                raise ValueError(f"layer {n!r} does not fit its schema ({e}): build it with twin.layers") from e
        write_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
        blobs = {n: _parquet(t) for n, t in casted.items()}
        head = self.latest()
        refs: dict[str, LayerRef] = {}
        uploads = []
        for n, data in blobs.items():
            digest = hashlib.sha256(data).hexdigest()
            old = head.layers.get(n) if head else None
            if old is not None and old.sha256 == digest:
                refs[n] = old  # unchanged: share the parent's object
                continue
            key = f"{self.base}/data/{write_id}/{n}.parquet"
            refs[n] = LayerRef(key=key, rows=casted[n].num_rows, bytes=len(data), sha256=digest)
            uploads.append((key, data))
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda kd: self.store.put_bytes(self.bucket, kd[0], kd[1]), uploads))
        if before_commit is not None:
            before_commit()
        when = None if as_of is None else _parse_time(as_of, tz)
        for _ in range(max_retries):
            if expect_parent is not None and (head.id if head else "") != expect_parent:
                raise SnapshotConflict(f"snapshot {head.id if head else '(none)'} of {self.city!r} was committed "
                                       f"after {expect_parent or '(none)'}, which this write was based on: "
                                       "re-read the latest snapshot and apply the change again")
            seq = head.seq + 1 if head else 1
            now = dt.datetime.now(dt.UTC)
            man = Manifest(id=f"{seq:0{SEQ_DIGITS}d}", seq=seq, city=self.city, created=now, as_of=when or now,
                           parent=head.id if head else None, message=message, author=author, write_id=write_id,
                           layers=refs)
            if self._create_if_absent(self._manifest_key(seq), man.model_dump_json(indent=2).encode()):
                self._manifests[man.id] = man
                return man
            head = self.latest()  # another writer took this number: commit after it
            # Layers shared with our old parent stay valid: objects are never rewritten.
        raise SnapshotConflict(f"could not commit a snapshot of {self.city!r} after {max_retries} tries: too many "
                               "concurrent writers")

    def update(self, change: Callable[[dict[str, pa.Table]], Mapping[str, pa.Table]], message: str = "",
               author: str | None = None, attempts: int = 5) -> Manifest:
        """Read-modify-write: apply ``change`` to the latest snapshot's tables and commit the result after it.

        When another writer commits in between (:class:`SnapshotConflict`), the latest snapshot is read again
        and ``change`` applied again, up to ``attempts`` times.

        Parameters
        ----------
        change
            Takes the latest snapshot's tables (layer name -> table; empty without a snapshot) and returns the
            tables to commit.
        message, author
            The commit's message and author.
        attempts
            Tries before giving up.

        Returns
        -------
        Manifest
            The new snapshot's manifest.

        Raises
        ------
        SnapshotConflict
            When the twin changed under every one of the ``attempts``.
        """
        def once() -> Manifest:
            head = self.latest()
            tables = dict(self.open(head.id).tables()) if head else {}
            return self.create(change(tables), message=message, author=author,
                               expect_parent=head.id if head else "")

        try:
            return Retrying(stop=stop_after_attempt(attempts), retry=retry_if_exception_type(SnapshotConflict),
                            reraise=True)(once)
        except SnapshotConflict as e:
            raise SnapshotConflict(f"could not commit to {self.city!r}: the twin changed {attempts} times "
                                   f"while this change was applied ({e})") from e

    # ---- comparing and pruning ---------------------------------------------------------------------
    def diff(self, old: str | int, new: str | int) -> SnapshotDiff:
        """Rows added, removed and changed per layer from snapshot ``old`` to ``new``."""
        a, b = self.open(old), self.open(new)
        out: dict[str, LayerDiff] = {}
        for n in LAYERS:
            ra, rb = a.manifest.layers.get(n), b.manifest.layers.get(n)
            if ra is None and rb is None:
                continue
            if ra is not None and rb is not None and ra.sha256 == rb.sha256:
                e = schema(n).empty_table()
                out[n] = LayerDiff(n, e, e, e)
                continue
            ta, tb = a.table(n), b.table(n)
            fa, fb = _row_fingerprints(ta, KEYS[n]), _row_fingerprints(tb, KEYS[n])
            added = [fb[k][0] for k in fb if k not in fa]
            removed = [fa[k][0] for k in fa if k not in fb]
            changed = [fb[k][0] for k in fb if k in fa and fa[k][1] != fb[k][1]]
            out[n] = LayerDiff(n, tb.take(pa.array(added, pa.int64())), ta.take(pa.array(removed, pa.int64())),
                               tb.take(pa.array(changed, pa.int64())))
        return SnapshotDiff(a.id, b.id, out)

    def retain(self, keep_last: int | None = None, older_than: dt.timedelta | dt.datetime | None = None,
               grace: dt.timedelta = dt.timedelta(hours=1), dry_run: bool = False) -> RetentionReport:
        """Delete old snapshots: those beyond the newest ``keep_last`` AND (if given) created before
        ``older_than`` (an age or a time). The newest snapshot is always kept. Manifests go first, then the
        data objects that no kept snapshot references and that are older than ``grace``; every version of a
        deleted object is removed (the bucket is versioned), so the space is really freed.
        """
        if keep_last is None and older_than is None:
            raise ValueError("retain needs keep_last and/or older_than, else it would keep everything")
        if keep_last is not None and keep_last < 1:
            raise ValueError("keep_last must be at least 1: the newest snapshot is always kept")
        mans = self.list()
        now = dt.datetime.now(dt.UTC)
        cutoff = None if older_than is None else (now - older_than if isinstance(older_than, dt.timedelta)
                                                  else _parse_time(older_than, "UTC"))
        drop = []
        for i, m in enumerate(mans):
            beyond = keep_last is None or i < len(mans) - keep_last
            old = cutoff is None or m.created < cutoff
            if beyond and old and i < len(mans) - 1:
                drop.append(m)
        kept = [m for m in mans if m not in drop]
        referenced = {ref.key for m in kept for ref in m.layers.values()}
        drop_ids = {m.id for m in drop}
        n_objects = 0
        if not dry_run and drop:
            n_objects += self._remove_all_versions([self._manifest_key(m.seq) for m in drop])
            for m in drop:
                self._manifests.pop(m.id, None)
        # Data objects of no kept snapshot: those of dropped snapshots and of writes that never committed.
        orphans = []
        for key in self._list(f"{self.base}/data/"):
            if key in referenced:
                continue
            wid = key.split("/")[-2]
            try:
                written = dt.datetime.strptime(wid.split("-")[0], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
            except ValueError:
                continue
            # Only objects older than the grace period: a writer in flight may be about to commit a snapshot
            # that shares them with its (now dropped) parent.
            if now - written >= grace:
                orphans.append(key)
        if not dry_run and orphans:
            n_objects += self._remove_all_versions(orphans)
        return RetentionReport(kept=[m.id for m in kept], deleted=sorted(drop_ids),
                               objects_deleted=n_objects if not dry_run else len(orphans) + len(drop),
                               dry_run=dry_run)
