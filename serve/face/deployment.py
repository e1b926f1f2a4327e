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
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve.face.schemas import ImageFaces, WarrantRecord
from serve.face.service import FaceService, FaceServiceConfig

DEPLOYMENT_NAME = "FaceDeployment"


class FaceAppConfig(BaseModel):
    """Serve-level settings of the face app plus the per-replica service settings."""

    model_config = ConfigDict(extra="forbid")

    service: FaceServiceConfig = FaceServiceConfig()
    max_batch_size: int = Field(default=8, ge=1, le=256)
    batch_wait_timeout_s: float = Field(default=0.02, ge=0.0, le=5.0)
    max_ongoing_requests: int | None = Field(default=None, ge=1, description="None = 2 * max_batch_size")
    num_replicas: int = Field(default=1, ge=1)
    num_cpus: float = Field(default=1.0, ge=0.0)
    num_gpus: float = Field(default=0.0, ge=0.0)
    use_store: bool = Field(default=False, description="open the object store in the replica (open_store())")


@serve.deployment(name=DEPLOYMENT_NAME)
class FaceDeployment:
    """A Serve replica of the face service; batched detect/identify, plus watchlist management calls."""

    def __init__(self, config: dict[str, Any]) -> None:
        """Build the FaceService inside the replica and apply the configured batch size and wait."""
        cfg = FaceAppConfig.model_validate(config)
        store = None
        if cfg.use_store:
            from twin.objectstore import S3Settings, connect

            settings = S3Settings.from_env()
            if settings is None:
                raise RuntimeError("use_store is set but SSZ_S3_ENDPOINT is not: pass the store settings to the "
                                   "replica environment (runtime_env env_vars)")
            store = connect(settings)
        self.service = FaceService(cfg.service, store=store)
        self._detect_batch.set_max_batch_size(cfg.max_batch_size)
        self._detect_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self._identify_batch.set_max_batch_size(cfg.max_batch_size)
        self._identify_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self._batch_sizes: deque[int] = deque(maxlen=1000)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _detect_batch(self, images: list[np.ndarray]) -> list[ImageFaces]:
        self._batch_sizes.append(len(images))
        return await asyncio.to_thread(self._per_item, images, self.service.detect)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _identify_batch(self, images: list[np.ndarray]) -> list[ImageFaces]:
        self._batch_sizes.append(len(images))
        return await asyncio.to_thread(self._per_item, images, self.service.identify)

    @staticmethod
    def _per_item(images: list[np.ndarray], fn: Any) -> list[Any]:
        """Run the batch; if it fails, retry each item alone so one bad image fails only its own request."""
        try:
            return list(fn(images))
        except Exception:
            out: list[Any] = []
            for im in images:
                try:
                    out.append(fn([im])[0])
                except Exception as e:
                    out.append(e)
            return out

    async def detect(self, image: np.ndarray) -> ImageFaces:
        """Faces of one RGB uint8 image (batched with concurrent calls)."""
        r = await self._detect_batch(image)
        if isinstance(r, Exception):
            raise r
        return r

    async def identify(self, image: np.ndarray) -> ImageFaces:
        """Faces of one RGB uint8 image with watchlist candidates (batched with concurrent calls)."""
        r = await self._identify_batch(image)
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
              actor: str) -> WarrantRecord:
        """Enrol a warrant with its photos (see FaceService.enrol)."""
        return self.service.enrol(WarrantRecord.model_validate(record), photos, actor)

    def remove(self, warrant_no: str, actor: str, reason: str = "") -> WarrantRecord:
        """Remove a warrant and its embeddings (see FaceService.remove)."""
        return self.service.remove(warrant_no, actor, reason)

    def update(self, warrant_no: str, actor: str, fields: dict[str, Any]) -> WarrantRecord:
        """Change record fields of a warrant (see FaceService.update)."""
        return self.service.update(warrant_no, actor, **fields)

    def warrants(self, include_expired: bool = True) -> list[WarrantRecord]:
        """All warrant records (no embeddings)."""
        return self.service.warrants(include_expired)

    def health(self) -> dict[str, Any]:
        """Engine, watchlist size and recent batch sizes of this replica."""
        h = self.service.health()
        h["recent_batch_sizes"] = list(self._batch_sizes)[-50:]
        h["time"] = time.time()
        return h


def build_face_app(config: FaceAppConfig | None = None) -> serve.Application:
    """The bound Serve application for ``config`` (run it with ``serve.run(app, name=..., route_prefix=None)``)."""
    cfg = config or FaceAppConfig()
    ongoing = max(cfg.max_ongoing_requests or 2 * cfg.max_batch_size, cfg.max_batch_size)
    dep = FaceDeployment.options(
        num_replicas=cfg.num_replicas,
        max_ongoing_requests=ongoing,
        ray_actor_options={"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus},
    )
    return dep.bind(cfg.model_dump(mode="json"))


def face_handle(app_name: str = "face") -> DeploymentHandle:
    """The handle of a running face app, usable from any actor or task of the cluster."""
    return serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=app_name)
