"""Ray Serve deployment of the face service with dynamic batching (``@serve.batch``).

One replica holds one :class:`~serve.face.service.FaceService` (models are created in the replica constructor,
never pickled from the driver). Single-image ``detect`` / ``identify`` calls arriving from camera actors are
grouped by ``@serve.batch`` into one batched model call of up to ``max_batch_size`` images, waiting at most
``batch_wait_timeout_s`` for a batch to fill. The model call runs in a worker thread so the replica keeps
accepting requests (and forming the next batch) meanwhile. ``max_ongoing_requests`` is kept >= ``max_batch_size``
(Serve's default of 5 would cap the batch). ``num_gpus`` lets the same app run on CPU here
and on GPU nodes in production (set ``service.device='cuda'`` with it).

Usage (driver or inside an actor; create handles inside actors, not in their constructor arguments)::

    from ray import serve
    app = build_face_app(FaceAppConfig(max_batch_size=8))
    handle = serve.run(app, name="face", route_prefix=None)
    result = handle.identify.remote(frame_rgb).result()          # ImageFaces
    # elsewhere, e.g. in a CameraShard actor:
    handle = serve.get_deployment_handle("FaceDeployment", app_name="face")
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import date
from typing import Any

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve.face.schemas import ImageFaces, WarrantRecord
from serve.face.service import FaceService, FaceServiceConfig
from serve.replica import ReplicaConfig, bind, per_item, replica_store

DEPLOYMENT_NAME = "FaceDeployment"


class FaceAppConfig(ReplicaConfig):
    """Serve-level settings of the face app plus the per-replica service settings."""

    service: FaceServiceConfig = FaceServiceConfig()


@serve.deployment(name=DEPLOYMENT_NAME)
class FaceDeployment:
    """A Serve replica of the face service; batched detect/identify, plus watchlist management calls."""

    def __init__(self, config: dict[str, Any]) -> None:
        """Build the FaceService inside the replica and apply the configured batch size and wait."""
        from serve.listeners import bind_replica_grpc_to_node_ip

        bind_replica_grpc_to_node_ip()  # this replica's inter-deployment gRPC server: node IP only, not [::]
        cfg = FaceAppConfig.model_validate(config)
        self.service = FaceService(cfg.service, store=replica_store(cfg))
        self._detect_batch.set_max_batch_size(cfg.max_batch_size)
        self._detect_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self._identify_batch.set_max_batch_size(cfg.max_batch_size)
        self._identify_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self._batch_sizes: deque[int] = deque(maxlen=1000)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _detect_batch(self, images: list[np.ndarray]) -> list[ImageFaces]:
        self._batch_sizes.append(len(images))
        return await asyncio.to_thread(per_item, self.service.detect, images)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _identify_batch(self, items: list[tuple[np.ndarray, str | None]]) -> list[ImageFaces | Exception]:
        """One batch of (image, list name): one model pass per list named in the batch."""
        self._batch_sizes.append(len(items))
        groups: dict[str | None, list[int]] = {}
        for i, (_, name) in enumerate(items):
            groups.setdefault(name, []).append(i)
        out: list[Any] = [None] * len(items)
        for name, idx in groups.items():
            res = await asyncio.to_thread(per_item, lambda imgs, n=name: self.service.identify(imgs, list_name=n),
                                          [items[i][0] for i in idx])
            for i, r in zip(idx, res, strict=True):
                out[i] = r
        return out

    async def detect(self, image: np.ndarray) -> ImageFaces:
        """Faces of one RGB uint8 image (batched with concurrent calls)."""
        r = await self._detect_batch(image)
        if isinstance(r, Exception):
            raise r
        return r

    async def identify(self, image: np.ndarray, list_name: str | None = None) -> ImageFaces:
        """Faces of one RGB uint8 image with candidates from the operational watchlist or the named list
        ``list_name`` (batched with concurrent calls)."""
        r = await self._identify_batch((image, list_name))
        if isinstance(r, Exception):
            raise r
        return r

    def detect_many(self, images: list[np.ndarray]) -> list[ImageFaces]:
        """A caller-made batch in one call (no waiting for others)."""
        return self.service.detect(images)

    def identify_many(self, images: list[np.ndarray], on: date | None = None) -> list[ImageFaces]:
        """A caller-made batch in one call, optionally as of date ``on``."""
        return self.service.identify(images, on=on)

    def enrol(self, record: WarrantRecord | dict[str, Any], photos: dict[str, np.ndarray],
              actor: str, list_name: str | None = None) -> WarrantRecord:
        """Enrol a warrant with its photos (see FaceService.enrol); ``list_name``: a named list."""
        return self.service.enrol(WarrantRecord.model_validate(record), photos, actor, list_name=list_name)

    def remove(self, warrant_no: str, actor: str, reason: str = "", list_name: str | None = None) -> WarrantRecord:
        """Remove a warrant and its embeddings (see FaceService.remove)."""
        return self.service.remove(warrant_no, actor, reason, list_name=list_name)

    def update(self, warrant_no: str, actor: str, fields: dict[str, Any],
               list_name: str | None = None) -> WarrantRecord:
        """Change record fields of a warrant (see FaceService.update)."""
        return self.service.update(warrant_no, actor, list_name=list_name, **fields)

    def warrants(self, include_expired: bool = True, list_name: str | None = None) -> list[WarrantRecord]:
        """All warrant records (no embeddings)."""
        return self.service.warrants(include_expired, list_name=list_name)

    def health(self) -> dict[str, Any]:
        """Engine, watchlist size and recent batch sizes of this replica."""
        h = self.service.health()
        h["recent_batch_sizes"] = list(self._batch_sizes)[-50:]
        h["time"] = time.time()
        return h


def build_face_app(config: FaceAppConfig | None = None) -> serve.Application:
    """The bound Serve application of the face model.

    Parameters
    ----------
    config
        Replicas, batching and the face service (watchlist, engine); default :class:`FaceAppConfig`.

    Returns
    -------
    ray.serve.Application
        Run it with ``serve.run(app, name=..., route_prefix=None)``.
    """
    return bind(FaceDeployment, config or FaceAppConfig())


def face_handle(app_name: str = "face") -> DeploymentHandle:
    """The handle of a running face app, usable from any actor or task of the cluster.

    Parameters
    ----------
    app_name
        The Serve application's name (``ssz`` for the product's app).

    Returns
    -------
    ray.serve.handle.DeploymentHandle
    """
    return serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=app_name)
