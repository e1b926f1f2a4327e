"""The field-input store: accepted patrol GPS, QR scans, SOS presses and citizen reports, durable before the
answer and committed to the twin at least every minute.

The ingest API (:mod:`serve.field`) validates a batch with :mod:`twin.fieldinput`, turns it into rows of a twin
layer (``patrol_pings``, ``checkpoint_scans``, ``sos_reports``) and hands it to :meth:`FieldStoreCore.accept`,
which, before it returns,

1. refuses a batch whose idempotency key it has seen (a retried request is stored once),
2. writes the batch as one Arrow IPC object to ``twin/field/<city>/inbox/<time>-<key hash>.arrow``: once the
   put returned, the batch survives the loss of this process (*accepted means written*).

A background thread folds pending batches into the next twin snapshot every ``commit_every_s`` seconds
(:meth:`FieldStoreCore.commit`, also called on shutdown); rows already in the snapshot (same primary key,
:data:`twin.schemas.KEYS`) are not added twice, so a crash between the snapshot and the clean-up of the inbox
duplicates nothing. A restarted store (Ray's ``max_restarts`` re-runs the constructor) reloads the inbox and
the idempotency keys of the last day (``field/<city>/keys.json``, and each inbox object's key and body hash), so
nothing accepted is lost or doubled, and a key reused for another body is refused after a restart too.

It also keeps the last ``trail_s`` seconds of every unit's positions (patrol units and mobile cameras) for the
console's map and for mobile cameras' alerts (:meth:`FieldStoreCore.position_at`).
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import logging
import threading
import time
from collections import deque
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from actors import start_named_actor
from serve.errors import ConflictError
from twin.objectstore import TWIN_BUCKET, S3Settings, Store, connect_configured
from twin.schemas import KEYS

log = logging.getLogger(__name__)

FIELD_LAYERS = ("patrol_pings", "checkpoint_scans", "sos_reports")


def field_name(city: str) -> str:
    """The named field store actor of one city (``ssz-field-<city>``)."""
    return f"ssz-field-{city}"


class FieldStoreConfig(BaseModel):
    """Settings of one city's field store."""

    model_config = ConfigDict(extra="forbid")

    city: str = Field(description="the city id whose field inputs this store keeps")
    s3: S3Settings | None = Field(default=None, description="object store; None = SSZ_S3_* from the environment")
    commit_every_s: float = Field(default=60.0, gt=0, le=3600, description="longest time (s) between an accepted "
                                                                           "batch and its twin snapshot")
    trail_s: float = Field(default=900.0, gt=0, le=86_400, description="seconds of each unit's positions kept "
                                                                        "for the map's trails (15 min)")
    keys_keep_s: float = Field(default=86_400.0, gt=0, description="how long (s) an idempotency key is remembered")


class FieldStats(BaseModel):
    """Counters of the store since it started."""

    accepted_batches: int = Field(default=0, description="batches written to the inbox")
    accepted_rows: dict[str, int] = Field(default_factory=dict, description="rows accepted per layer")
    duplicate_batches: int = Field(default=0, description="batches refused as repeats of an idempotency key")
    committed_rows: dict[str, int] = Field(default_factory=dict, description="rows committed to snapshots per layer")
    pending_batches: int = Field(default=0, description="accepted batches not yet in a snapshot")
    last_snapshot: str | None = Field(default=None, description="the last snapshot this store committed")
    last_commit_ts: float | None = Field(default=None, description="Unix time of the last commit")
    reloaded_batches: int = Field(default=0, description="pending batches reloaded from the inbox at start")
    pid: int = Field(default=0, description="process id of the store (changes on a restart)")


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _ipc(table: pa.Table, meta: dict[str, str]) -> bytes:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k.encode(): v.encode()
                                                                                for k, v in meta.items()}})
    buf = io.BytesIO()
    with pa.ipc.new_stream(buf, table.schema) as w:
        w.write_table(table)
    return buf.getvalue()


def _row_keys(table: pa.Table, layer: str) -> pa.Array:
    cols = [pc.cast(table[c], pa.string()) for c in KEYS[layer]]
    return cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, "|")


class FieldStoreCore:
    """All of the store's logic; :class:`FieldStore` is the Ray actor around it."""

    def __init__(self, config: FieldStoreConfig, store: Store | None = None, start_committer: bool = False) -> None:
        """Connect, reload the inbox (pending batches) and the recent idempotency keys; optionally start the
        background committer."""
        import os

        self.cfg = config
        self.store = store or connect_configured(config.s3, "the field store")
        self._lock = threading.RLock()
        self._commit_lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] = {}  # idempotency key hash -> {ts, n, layer}
        self._pending: list[tuple[str, str, pa.Table]] = []  # (inbox object, layer, rows)
        self._tracks: dict[str, deque[tuple[float, float, float]]] = {}  # unit -> (unix ts, lon, lat)
        self._last_scan: dict[str, float] | None = None  # QR box -> Unix time of its last scan (read lazily)
        self.stats = FieldStats(pid=os.getpid())
        self._reload()
        self._stop = threading.Event()
        if start_committer:
            threading.Thread(target=self._committer, name="field-committer", daemon=True).start()

    # ---------------------------------------------------------------- storage
    @property
    def _prefix(self) -> str:
        return f"field/{self.cfg.city}"

    def _reload(self) -> None:
        try:
            raw = json.loads(self.store.get_bytes(TWIN_BUCKET, f"{self._prefix}/keys.json"))
            self._keys = dict(raw.get("keys", {}))
        except Exception:  # no keys file yet (a new city): start empty
            self._keys = {}
        names = sorted(o.object_name for o in self.store.client.list_objects(
            TWIN_BUCKET, prefix=f"{self._prefix}/inbox/", recursive=True))
        for name in names:
            table = pa.ipc.open_stream(self.store.get_bytes(TWIN_BUCKET, name)).read_all()
            meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
            layer = meta.get("layer", "")
            if layer not in FIELD_LAYERS:
                log.warning("field inbox object %s names no known layer (%r): left in place", name, layer)
                continue
            self._pending.append((name, layer, table))
            self._keys.setdefault(meta.get("key", name), {"ts": float(meta.get("ts", 0)), "n": table.num_rows,
                                                          "layer": layer, "body": meta.get("body")})
            self._track(layer, table)
        self.stats.reloaded_batches = len(self._pending)
        self.stats.pending_batches = len(self._pending)

    # ---------------------------------------------------------------- intake
    def accept(self, layer: str, table: pa.Table, key: str, body: str | None = None) -> dict[str, Any]:
        """Store one validated batch durably (or recognise a repeat of ``key``).

        Parameters
        ----------
        layer
            One of :data:`FIELD_LAYERS`.
        table
            Rows of that layer (already validated against its schema).
        key
            The idempotency key (the client's ``Idempotency-Key``, or a hash of the request body).
        body
            A hash of the request body: a repeat of ``key`` with another body is refused, not taken for a retry.

        Returns
        -------
        dict
            ``{"accepted": rows, "duplicate": bool, "layer": layer}``.

        Raises
        ------
        ValueError
            An unknown layer.
        serve.errors.ConflictError
            ``key`` was used before for another body (a client reusing its key for a new batch): nothing stored.
        twin.objectstore.StoreError, minio.error.S3Error
            The batch could not be written: it was not accepted (the caller answers 503).
        """
        if layer not in FIELD_LAYERS:
            raise ValueError(f"the field store keeps {', '.join(FIELD_LAYERS)}, not {layer!r}")
        h = _key_hash(key)
        with self._lock:
            seen = self._keys.get(h)
            if seen is not None and body is not None and seen.get("body") not in (None, body):
                raise ConflictError(f"this Idempotency-Key was used {time.time() - seen['ts']:.0f} s ago for another "
                                    "batch: nothing was stored; send each new batch under a new key (and a retry "
                                    "with the same key and the same body)")
            if seen is not None:
                self.stats.duplicate_batches += 1
                return {"accepted": int(seen["n"]), "duplicate": True, "layer": seen["layer"]}
            now = time.time()
            name = f"{self._prefix}/inbox/{time.time_ns():020d}-{h}.arrow"
            meta = {"layer": layer, "key": h, "ts": repr(now)} | ({"body": body} if body is not None else {})
            self.store.put_bytes(TWIN_BUCKET, name, _ipc(table, meta),  # the body hash too: a restart knows a reuse
                                 content_type="application/vnd.apache.arrow.stream")
            self._keys[h] = {"ts": now, "n": table.num_rows, "layer": layer, "body": body}
            self._pending.append((name, layer, table))
            self.stats.accepted_batches += 1
            self.stats.accepted_rows[layer] = self.stats.accepted_rows.get(layer, 0) + table.num_rows
            self.stats.pending_batches = len(self._pending)
            self._track(layer, table)
        return {"accepted": table.num_rows, "duplicate": False, "layer": layer}

    def _track(self, layer: str, table: pa.Table) -> None:
        if layer == "checkpoint_scans" and table.num_rows and self._last_scan is not None:
            ts = (pc.cast(table["ts"], pa.int64()).to_numpy() / 1000.0).tolist()
            for box, t in zip(table["checkpoint_id"].to_pylist(), ts, strict=True):
                self._last_scan[box] = max(self._last_scan.get(box, 0.0), t)
        if layer != "patrol_pings" or table.num_rows == 0:
            return
        units = table["unit_id"].to_pylist()
        ts = (pc.cast(table["ts"], pa.int64()).to_numpy() / 1000.0).tolist()
        lon, lat = table["lon"].to_pylist(), table["lat"].to_pylist()
        horizon = time.time() - self.cfg.trail_s
        for u, t, x, y in sorted(zip(units, ts, lon, lat, strict=True), key=lambda r: (r[0], r[1])):
            if x is None or y is None:
                continue
            q = self._tracks.setdefault(u, deque())
            if q and t < q[-1][0]:  # a late fix: keep the deque in time order
                items = list(q)
                bisect.insort(items, (t, x, y))
                q.clear()
                q.extend(items)
            else:
                q.append((t, x, y))
            while q and q[0][0] < min(horizon, q[-1][0] - self.cfg.trail_s):
                q.popleft()

    # ---------------------------------------------------------------- reading
    def positions(self) -> dict[str, dict[str, Any]]:
        """Every unit's last position and its trail of the last ``trail_s`` seconds (of its own clock).

        Returns
        -------
        dict
            ``unit -> {"lon", "lat", "ts" (Unix s), "trail": [[lon, lat], ...] oldest first}``.
        """
        with self._lock:
            out = {}
            for u, q in self._tracks.items():
                if not q:
                    continue
                last = q[-1]
                trail = [[x, y] for t, x, y in q if t >= last[0] - self.cfg.trail_s]
                out[u] = {"lon": last[1], "lat": last[2], "ts": last[0], "trail": trail}
            return out

    def position_at(self, unit: str, ts: float) -> tuple[float, float] | None:
        """Where ``unit`` (a mobile camera or patrol) was at Unix time ``ts``: its last fix at or before ``ts``
        (the first one when ``ts`` is older than the trail), None when it never reported."""
        with self._lock:
            q = self._tracks.get(unit)
            if not q:
                return None
            items = list(q)
            i = bisect.bisect_right([t for t, _, _ in items], ts) - 1
            _, x, y = items[max(i, 0)]
            return (x, y)

    def last_scans(self) -> dict[str, float]:
        """QR box -> Unix time of its last scan (from the latest snapshot and everything accepted since)."""
        with self._lock:
            if self._last_scan is None:
                from twin.snapshots import SnapshotStore

                self._last_scan = {}
                snaps = SnapshotStore(self.store, self.cfg.city)
                head = snaps.latest()
                tables = [snaps.open(head.id).table("checkpoint_scans")] if head and "checkpoint_scans" in \
                    head.layers else []
                tables += [t for _, layer, t in self._pending if layer == "checkpoint_scans"]
                for t in tables:
                    self._track("checkpoint_scans", t)
            return dict(self._last_scan)

    def pending(self) -> dict[str, pa.Table]:
        """Accepted rows not yet in a snapshot, per layer."""
        with self._lock:
            by: dict[str, list[pa.Table]] = {}
            for _, layer, t in self._pending:
                by.setdefault(layer, []).append(t)
            return {k: pa.concat_tables(v) for k, v in by.items()}

    # ---------------------------------------------------------------- commit
    def commit(self, message: str = "field inputs", author: str = "system:field-store") -> str | None:
        """Fold every pending batch into the city's next twin snapshot; returns its id (None: nothing pending).

        Rows whose primary key is already in the snapshot's layer are left out (a repeat after a crash), and so
        are rows whose key repeats an earlier pending row (a device that sent a ping twice).
        """
        from twin.snapshots import SnapshotStore

        with self._commit_lock:
            with self._lock:
                batch = list(self._pending)
            if not batch:
                return None
            new: dict[str, pa.Table] = {}
            for _, layer, t in batch:
                new[layer] = pa.concat_tables([new[layer], t]) if layer in new else t

            def add(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
                out = dict(tables)
                for layer, t in new.items():
                    # a row repeated in one batch, or in two batches a device sent under two keys, is added once
                    t = t.filter(pa.array(~_row_keys(t, layer).to_pandas().duplicated().to_numpy()))
                    old = out.get(layer)
                    if old is not None and old.num_rows:
                        old = old.cast(t.schema) if old.schema != t.schema else old
                        t = t.filter(pc.invert(pc.is_in(_row_keys(t, layer), _row_keys(old, layer))))
                        out[layer] = pa.concat_tables([old, t])
                    else:
                        out[layer] = t
                return out

            snap = SnapshotStore(self.store, self.cfg.city).update(add, message=message, author=author).id
            done = {name for name, _, _ in batch}
            with self._lock:
                self._pending = [p for p in self._pending if p[0] not in done]
                horizon = time.time() - self.cfg.keys_keep_s
                self._keys = {k: v for k, v in self._keys.items() if v["ts"] >= horizon}
                keys = json.dumps({"keys": self._keys}).encode()
                for layer, t in new.items():
                    self.stats.committed_rows[layer] = self.stats.committed_rows.get(layer, 0) + t.num_rows
                self.stats.pending_batches = len(self._pending)
                self.stats.last_snapshot = snap
                self.stats.last_commit_ts = time.time()
            self.store.put_bytes(TWIN_BUCKET, f"{self._prefix}/keys.json", keys, content_type="application/json")
            for name in sorted(done):
                try:
                    self.store.client.remove_object(TWIN_BUCKET, name)
                except Exception as e:  # left in the inbox: the next start skips its rows as already committed
                    log.warning("field inbox object %s not removed after commit: %s", name, e)
            return snap

    def _committer(self) -> None:
        while not self._stop.wait(self.cfg.commit_every_s):
            try:
                self.commit(message="field inputs (periodic commit)")
            except Exception as e:  # keep the batches pending; the next round retries
                log.error("field store %s: periodic commit failed: %s", self.cfg.city, e)

    def close(self) -> str | None:
        """Stop the committer and commit what is pending (on shutdown)."""
        self._stop.set()
        return self.commit(message="field inputs (shutdown)")


class FieldStore:
    """Ray actor around :class:`FieldStoreCore` (name :func:`field_name` in namespace ``ssz``)."""

    def __init__(self, config: FieldStoreConfig) -> None:
        """Build the core with its periodic committer; a restart reloads the inbox."""
        self.core = FieldStoreCore(config, start_committer=True)

    def accept(self, layer: str, table: pa.Table, key: str, body: str | None = None) -> dict[str, Any]:
        """See :meth:`FieldStoreCore.accept`."""
        return self.core.accept(layer, table, key, body)

    def positions(self) -> dict[str, dict[str, Any]]:
        """See :meth:`FieldStoreCore.positions`."""
        return self.core.positions()

    def position_at(self, unit: str, ts: float) -> tuple[float, float] | None:
        """See :meth:`FieldStoreCore.position_at`."""
        return self.core.position_at(unit, ts)

    def last_scans(self) -> dict[str, float]:
        """See :meth:`FieldStoreCore.last_scans`."""
        return self.core.last_scans()

    def commit(self, message: str = "field inputs") -> str | None:
        """See :meth:`FieldStoreCore.commit`."""
        return self.core.commit(message)

    def close(self) -> str | None:
        """See :meth:`FieldStoreCore.close`."""
        return self.core.close()

    def stats(self) -> dict[str, Any]:
        """Counters (:class:`FieldStats`)."""
        with self.core._lock:
            return self.core.stats.model_dump()


def start_field_store(config: FieldStoreConfig, max_restarts: int = -1) -> Any:
    """Create (or get) the city's named field store actor; it restarts after a crash and reloads its inbox.

    Parameters
    ----------
    config
        The store's settings (pickled whole: a JSON dump would mask the S3 secret).
    max_restarts
        Ray restarts after a crash (-1: always).

    Returns
    -------
    ray.actor.ActorHandle
    """
    return start_named_actor(FieldStore, field_name(config.city), config, max_restarts)
