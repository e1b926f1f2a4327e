"""Ray actors of the camera pipeline: camera sources, camera shards (decode, motion gate, sample, detect,
track, confirm), the detectors they call, the typed events they send, and the alert sink with its channels.

Every named actor of the product lives in the Ray namespace :data:`RAY_NAMESPACE`.
"""

RAY_NAMESPACE = "ssz"


def start_named_actor(cls: type, name: str, config: object, max_restarts: int = -1) -> object:
    """Create (or get) the named actor ``name`` of class ``cls`` in :data:`RAY_NAMESPACE`, restarting after a
    crash (``max_restarts``, -1: always) and never retrying a task; ``config`` is pickled whole (a JSON dump
    would mask the S3 secret). Returns the actor handle."""
    import ray

    actor = ray.remote(cls).options(name=name, namespace=RAY_NAMESPACE, get_if_exists=True,
                                    max_restarts=max_restarts, max_task_retries=0, num_cpus=0, max_concurrency=16)
    return actor.remote(config)
