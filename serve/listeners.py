"""Keep the Serve replicas' own gRPC listeners off the network: bind them to the node's address only.

Ray Serve 2.60 starts, in every replica, a gRPC server for inter-deployment calls (proxy → replica and
replica → replica) and binds it with ``add_port_to_grpc_server(server, "[::]:0")`` — every interface, an
ephemeral port, with no setting or environment variable to change it (``ray/serve/_private/replica.py``,
``Replica._on_initialized``; upstream issue ray-project/ray#64544 and PR #64623 add only a port range). The
router reaches a replica at ``<node ip>:<port>``, so binding the node IP itself loses nothing: on a local
cluster (node IP 127.0.0.1) the listener is loopback-only; on a Kubernetes pod it is the pod IP only.

:func:`bind_replica_grpc_to_node_ip` must run inside the replica before Serve starts that server, i.e. in
the deployment's constructor (Serve calls ``_on_initialized`` after the user constructor returns). It
replaces the function the replica module calls with one that rewrites the all-interfaces address. It is
idempotent and does nothing outside a Serve replica or on a Ray version without that code path (the loopback
test in ``tests/cluster/test_ray.py`` then fails, which is the signal to revisit this).

Production still needs what no bind address gives: NetworkPolicies that admit only the platform's pods
(``infra/terraform``) and ``RAY_AUTH_MODE=token`` on every pod.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def is_wildcard_host(host: str) -> bool:
    """Whether ``host`` (of a ``host:port`` gRPC address, IPv6 possibly in brackets) means every interface: empty, or
    an unspecified address (IPv4 all-zeros, IPv6 ``::`` in any spelling; :attr:`ipaddress.IPv4Address.is_unspecified`).
    A name or a specific address is not."""
    bare = host.strip("[]")
    if not bare:
        return True
    try:
        return ipaddress.ip_address(bare).is_unspecified
    except ValueError:  # a host name such as 'localhost'
        return False


def _node_ip() -> str:
    import ray

    try:
        return ray.util.get_node_ip_address()
    except Exception:
        return "127.0.0.1"


def _host_of(address: str) -> tuple[str, str]:
    host, _, port = address.rpartition(":")
    return host, port


def bind_replica_grpc_to_node_ip() -> bool:
    """Make this replica's inter-deployment gRPC server bind the node IP instead of ``[::]``.

    Returns True when the patch is (already) in place, False when this Ray has no such code path.
    """
    try:
        from ray.serve._private import replica as replica_mod
    except ImportError:
        return False
    original: Callable[[Any, str], int] | None = getattr(replica_mod, "add_port_to_grpc_server", None)
    if original is None:
        log.warning("ray.serve._private.replica has no add_port_to_grpc_server: replica gRPC binding not changed")
        return False
    if getattr(original, "_ssz_node_ip", False):
        return True
    ip = _node_ip()

    def bind_node_ip(server: Any, address: str) -> int:
        host, port = _host_of(address)
        if is_wildcard_host(host):
            address = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        return original(server, address)

    bind_node_ip._ssz_node_ip = True  # type: ignore[attr-defined]
    replica_mod.add_port_to_grpc_server = bind_node_ip  # type: ignore[attr-defined]
    return True
