"""What every model deployment shares: Serve-level settings, the replica's store, per-item error isolation.

The face and plate deployments differ in their service; their Serve plumbing is this one module, so a
batching or placement rule (``max_ongoing_requests >= max_batch_size``, one bad frame failing only its
own caller) is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from twin.objectstore import S3Settings, Store, connect


class ReplicaConfig(BaseModel):
    """Serve-level settings of a model deployment (batch size and wait, replicas, CPUs/GPUs, store)."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(default=8, ge=1, le=256)
    batch_wait_timeout_s: float = Field(default=0.02, ge=0.0, le=5.0)
    max_ongoing_requests: int | None = Field(default=None, ge=1, description="None = 2 * max_batch_size")
    num_replicas: int = Field(default=1, ge=1)
    num_cpus: float = Field(default=1.0, ge=0.0)
    num_gpus: float = Field(default=0.0, ge=0.0)
    use_store: bool = Field(default=False, description="open the object store in the replica (SSZ_S3_*)")
    store_settings_file: str | None = Field(default=None, description="0600 JSON file with the platform user's S3 "
                                            "settings (the embedded store); None = SSZ_S3_* of the replica")


def store_settings(settings_file: str | None) -> S3Settings:
    """The platform user's S3 settings: from ``settings_file`` (written by ``cluster.store``) or ``SSZ_S3_*``."""
    if settings_file:
        import json
        from pathlib import Path

        return S3Settings.model_validate(json.loads(Path(settings_file).read_text()))
    settings = S3Settings.from_env()
    if settings is None:
        raise RuntimeError("the replica needs the object store but SSZ_S3_ENDPOINT is not set and no "
                           "store_settings_file was given: pass one of them to the replica")
    return settings


def replica_store(cfg: ReplicaConfig) -> Store | None:
    """The object store for a replica that asked for one (``use_store``), as the platform user."""
    if not cfg.use_store:
        return None
    return connect(store_settings(cfg.store_settings_file))


def per_item(fn: Callable[[list[Any]], Sequence[Any]], items: list[Any]) -> list[Any]:
    """Run ``fn`` on the batch; if it fails, run each item alone so one bad item fails only its own caller.

    Failed items come back as their exception, which the single-item method re-raises to its caller.
    """
    try:
        return list(fn(items))
    except Exception:
        out: list[Any] = []
        for it in items:
            try:
                out.append(fn([it])[0])
            except Exception as e:
                out.append(e)
        return out


def bind(deployment: Any, cfg: ReplicaConfig) -> serve.Application:
    """Bind a deployment with its replica options; ``max_ongoing_requests`` never caps the batch size."""
    ongoing = max(cfg.max_ongoing_requests or 2 * cfg.max_batch_size, cfg.max_batch_size)
    dep = deployment.options(num_replicas=cfg.num_replicas, max_ongoing_requests=ongoing,
                             ray_actor_options={"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus})
    return dep.bind(cfg.model_dump(mode="json"))
