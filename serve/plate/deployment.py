"""Ray Serve deployment of the plate service with dynamic batching (``@serve.batch``), plus hotlist calls.

One replica holds one :class:`~serve.plate.service.PlateService`; the OCR engine and localiser are created in
the replica constructor, never pickled from the driver. Single-frame ``read`` calls from camera actors or the
HTTP ingress are grouped by ``@serve.batch`` (up to ``max_batch_size`` frames, waiting at most
``batch_wait_timeout_s``) into one batched OCR call. ``max_ongoing_requests`` is kept >= ``max_batch_size``.
``num_gpus`` is configurable so the PaddleOCR engine can run on GPU nodes (the learned engine and Tesseract run
on CPU).

The hotlist lives in a file (plus the evidence bucket with ``use_store``); every replica loads it and picks up
changes made by others on its next batch (file mtime check). Changes made through this deployment are audited.

Usage::

    from ray import serve
    app = build_plate_app(PlateAppConfig(max_batch_size=8, hotlist_path="/var/ssz/hotlist.json",
                                         audit_path="/var/ssz/hotlist-audit.jsonl"))
    handle = serve.run(app, name="plate", route_prefix=None)
    reads = handle.read.remote(frame_rgb).result()        # list[PlateRead]
    handle = plate_handle("plate")                        # elsewhere, e.g. inside an actor
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve.plate.hotlist import DEFAULT_MAX_DISTANCE, Hotlist, HotlistEntry, HotlistError
from serve.plate.service import PlateInputError, PlateRead, PlateService, PlateServiceConfig
from serve.replica import ReplicaConfig, bind, per_item, replica_store

DEPLOYMENT_NAME = "PlateDeployment"
log = logging.getLogger(__name__)


class PlateAppConfig(ReplicaConfig):
    """Serve-level settings of the plate app plus the per-replica service settings."""

    service: PlateServiceConfig = PlateServiceConfig()
    hotlist_path: str | None = Field(default=None, description="hotlist JSON file; None = no hotlist matching")
    audit_path: str | None = Field(default=None, description="audit JSONL (default: beside the hotlist)")
    lists_dir: str | None = Field(default=None, description="folder of named hotlists (simulations' own lists, "
                                  "<lists_dir>/<name>/); None = only the operational hotlist")
    purge_every_s: float | None = Field(default=3600.0, gt=0, description="delete expired hotlist entries on load "
                                        "and then this often, s (audited as system:expiry); None = never")


def _to_bgr(image: np.ndarray, order: str) -> np.ndarray:
    """``image`` in BGR order; anything that is not a 3-channel array is passed on as it is, for
    :func:`~serve.plate.service.check_image` to refuse in its own entry (a file name among a batch's frames used to
    raise AttributeError here, for the whole batch)."""
    if order == "rgb" and isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image[:, :, ::-1])
    return image


def _matched(reads: list[PlateRead], named: Hotlist | None) -> list[PlateRead]:
    """``reads`` with their hotlist hits from the named list ``named`` (verified reads only, as the service matches
    the operational hotlist); ``reads`` as they are when ``named`` is None."""
    if named is None:
        return reads
    return [p.model_copy(update={"hotlist": named.match(p.plate) if p.plate is not None and p.verified else []})
            for p in reads]


@serve.deployment(name=DEPLOYMENT_NAME)
class PlateDeployment:
    """A Serve replica of the plate service: batched reads plus hotlist management."""

    def __init__(self, config: dict[str, Any]) -> None:
        """Build the OCR engine, localiser and hotlist inside the replica; apply the batch size and wait."""
        from serve.listeners import bind_replica_grpc_to_node_ip

        bind_replica_grpc_to_node_ip()  # this replica's inter-deployment gRPC server: node IP only, not [::]
        cfg = PlateAppConfig.model_validate(config)
        store = replica_store(cfg)
        hotlist = None
        if cfg.hotlist_path:
            from serve.audit import AuditLog

            hp = Path(cfg.hotlist_path)
            audit = AuditLog(Path(cfg.audit_path) if cfg.audit_path else hp.with_name("hotlist-audit.jsonl"),
                             name="hotlist", store=store)
            hotlist = Hotlist(hp, audit=audit, store=store, purge_every_s=cfg.purge_every_s)
        self.service = PlateService(cfg.service, hotlist=hotlist)
        self._store, self._lists_dir, self._purge_every_s = store, cfg.lists_dir, cfg.purge_every_s
        self._named: dict[str, Hotlist] = {}
        self._purge_all()  # on load: expired entries do not outlive a restart
        if cfg.purge_every_s is not None:  # and on a timer, so a quiet replica purges too
            threading.Thread(target=self._purge_loop, args=(cfg.purge_every_s,), name="hotlist-purge",
                             daemon=True).start()
        self._read_batch.set_max_batch_size(cfg.max_batch_size)
        self._read_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self._batch_sizes: deque[int] = deque(maxlen=1000)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _read_batch(self, images: list[np.ndarray]) -> list[list[PlateRead] | Exception]:
        self._batch_sizes.append(len(images))
        return await asyncio.to_thread(per_item, self.service.read, images)

    async def read(self, image: np.ndarray, order: Literal["rgb", "bgr"] = "rgb",
                   list_name: str | None = None) -> list[PlateRead]:
        """Plates in one frame (uint8 HxWx3, RGB by default), batched with concurrent calls; hotlist hits from
        the operational hotlist, or from the named list ``list_name``, for verified reads only (as the service
        matches: with ``keep_unparsed`` a parsed read below the confidence a plate needs, such as a sign read
        without a second line, comes back too, unmatched)."""
        named = self._hotlist(list_name) if list_name is not None else None
        r = await self._read_batch(_to_bgr(image, order))
        if isinstance(r, Exception):
            raise r
        return _matched(r, named)

    async def read_photo(self, image: np.ndarray, order: Literal["rgb", "bgr"] = "rgb",
                         list_name: str | None = None) -> list[PlateRead]:
        """Plates in one photo a person sent (uint8 HxWx3, RGB by default), as :meth:`read`; a photo in which no
        plate is found is read again turned a quarter each way inside this replica
        (:meth:`PlateService.read_photos`), so the turned copies never travel. Not for camera frames."""
        named = self._hotlist(list_name) if list_name is not None else None
        bgr = _to_bgr(image, order)
        r = await self._read_batch(bgr)
        if isinstance(r, Exception):
            raise r
        if not r:  # read upright already: only the turns are left
            r = await asyncio.to_thread(self.service.read_turned, bgr)
        return _matched(r, named)

    def read_many(self, images: list[np.ndarray], order: Literal["rgb", "bgr"] = "rgb"
                  ) -> list[list[PlateRead] | PlateInputError]:
        """A caller-made batch of frames in one call (no waiting for other callers); a bad frame comes back as its
        PlateInputError in its place (see :meth:`PlateService.read`)."""
        return self.service.read([_to_bgr(im, order) for im in images])

    def read_crops(self, crops: list[np.ndarray], order: Literal["rgb", "bgr"] = "rgb"
                   ) -> list[PlateRead | PlateInputError | None]:
        """Plate crops cut out by a camera shard: one read (or None) per crop; a bad crop comes back as its
        PlateInputError in its place (see :meth:`PlateService.read_crops`)."""
        return self.service.read_crops([_to_bgr(c, order) for c in crops])

    # ---- hotlist ---------------------------------------------------------------------------------
    def _purge_all(self) -> int:
        """Purge the expired entries of every open hotlist that is due (see :meth:`Hotlist.maybe_purge`)."""
        n = 0
        for hl in [self.service.hotlist, *self._named.values()]:
            if hl is None:
                continue
            try:
                hl.refresh()
                n += len(hl.maybe_purge())
            except Exception as e:  # the audit log is down: try again next time, keep serving
                log.warning("hotlist %s: expiry purge failed: %s", hl.path, e)
        return n

    def _purge_loop(self, every_s: float) -> None:
        while True:
            time.sleep(every_s)
            self._purge_all()

    def _hotlist(self, list_name: str | None = None) -> Hotlist:
        """The operational hotlist, or the named list ``list_name`` (its own file and audit log, mirror name
        ``hotlist-<name>``), opened on first use."""
        if list_name is not None:
            from serve.audit import AuditLog
            from serve.face.watchlist import check_list_name

            try:
                check_list_name(list_name)
            except ValueError as e:
                raise HotlistError(str(e)) from None
            if self._lists_dir is None:
                raise HotlistError(f"no named lists are configured here (lists_dir): cannot open {list_name!r}")
            if list_name not in self._named:
                d = Path(self._lists_dir) / list_name
                audit = AuditLog(d / "hotlist-audit.jsonl", name=f"hotlist-{list_name}", store=self._store)
                self._named[list_name] = Hotlist(d / "hotlist.json", audit=audit, store=self._store,
                                                 store_key=f"hotlist/{list_name}.json",
                                                 purge_every_s=self._purge_every_s)
            hl = self._named[list_name]
        elif self.service.hotlist is None:
            raise RuntimeError("this plate app has no hotlist: set hotlist_path in PlateAppConfig")
        else:
            hl = self.service.hotlist
        hl.refresh()
        with contextlib.suppress(Exception):  # due expiry on use; a failed audit leaves it to the next try
            hl.maybe_purge()
        return hl

    def hotlist_add(self, plate: str, reason: str, actor: str, expires_at: datetime | None = None,
                    max_distance: float = DEFAULT_MAX_DISTANCE, entry_id: str | None = None,
                    note: str = "", list_name: str | None = None,
                    vehicle: Literal["car", "motorcycle"] | None = None) -> HotlistEntry:
        """Hot-list a plate (text such as '1กข 1234 ภูเก็ต'); audited. Raises HotlistError on bad input."""
        return self._hotlist(list_name).add(plate, reason, actor, expires_at=expires_at, max_distance=max_distance,
                                            entry_id=entry_id, note=note, vehicle=vehicle)

    def hotlist_remove(self, entry_id: str, actor: str, reason: str = "", list_name: str | None = None) -> HotlistEntry:
        """Remove an entry; audited. Raises HotlistError when unknown."""
        return self._hotlist(list_name).remove(entry_id, actor, reason)

    def hotlist_get(self, entry_id: str, list_name: str | None = None) -> HotlistEntry:
        """One entry (HotlistError when unknown)."""
        return self._hotlist(list_name).get(entry_id)

    def hotlist_entries(self, include_expired: bool = False, list_name: str | None = None) -> list[HotlistEntry]:
        """All active entries (and expired ones not yet purged with ``include_expired``)."""
        return self._hotlist(list_name).entries(include_expired)

    def health(self) -> dict[str, Any]:
        """Engine, localiser, hotlist size and recent batch sizes of this replica."""
        hl = self.service.hotlist
        return {"engine": self.service.engine.name, "localiser": self.service.localiser.name,
                "hotlist_entries": len(hl) if hl is not None else None,
                "recent_batch_sizes": list(self._batch_sizes)[-50:], "time": time.time()}


def build_plate_app(config: PlateAppConfig | None = None) -> serve.Application:
    """The bound Serve application for ``config`` (run it with ``serve.run(app, name=..., route_prefix=None)``)."""
    return bind(PlateDeployment, config or PlateAppConfig())


def plate_handle(app_name: str = "plate") -> DeploymentHandle:
    """The handle of a running plate app, usable from any actor or task of the cluster."""
    return serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=app_name)
