"""Sharding of cameras over Ray nodes: weighted rendezvous hashing with bounded loads.

Why this design
---------------
* **Rendezvous (highest-random-weight) hashing** ranks every node for every camera with a stable hash
  (``blake2b``, never Python's salted ``hash()``), so every driver computes the same ranking. The
  weighted score ``-w / ln(h)`` (Schindelhauer & Schomaker) gives a node a share proportional to its
  capacity ``w`` (GPU count where the node has GPUs, else its CPU count).
* **Bounded loads**: plain HRW over 617 cameras and 4 nodes has a standard deviation of ~11 cameras per
  node, so max/mean is often above 1.1. Each node therefore gets a cap ``ceil((1 + epsilon) * N * w / W)``
  and a camera goes to its highest-ranked node that still has room.
* **Only necessary moves**: :func:`assign` takes the previous assignment. Cameras stay where they are
  unless their node disappeared (they move to their best node with room) or a node was added (cameras
  whose HRW choice is the new node, then cameras shed by nodes now over their cap, move *onto the new
  node only*). Removing a node moves only that node's cameras; adding one moves cameras only onto it.
* Within a node, cameras are grouped into shards (one :class:`actors.shard.CameraShard` actor each) of at
  most ``cameras_per_shard`` cameras; a camera keeps its shard while its node keeps it.
* **Placement is explicit**: :func:`ray_options` turns a shard's node into Ray scheduling options —
  a hard ``NodeAffinitySchedulingStrategy`` when the Ray node id is known, else a custom resource
  ``ssz_node:<name>`` that the node advertises (KubeRay worker groups set it) — never luck.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field

SHARD_PREFIX = "ssz-shard:"  # shard actors are named ssz-shard:<shard id> in namespace ssz

NODE_RESOURCE_PREFIX = "ssz_node:"


class ShardingError(ValueError):
    """The inputs cannot be sharded (no nodes, zero capacity, duplicate ids); the message says what to fix."""


class NodeSpec(BaseModel):
    """A node that can host camera shards; its capacity is its GPU count where present, else its CPUs."""

    name: str = Field(min_length=1)
    gpus: float = Field(default=0.0, ge=0)
    cpus: float = Field(default=1.0, ge=0)
    ray_node_id: str | None = Field(default=None, description="Ray's hex node id, for hard node affinity")

    @property
    def weight(self) -> float:
        """Relative capacity used by the weighted hashing: GPUs if the node has any, else CPUs."""
        return self.gpus if self.gpus > 0 else self.cpus


class Assignment(BaseModel):
    """Cameras to nodes, cameras to shards and shards to nodes: the whole placement of a city."""

    camera_node: dict[str, str] = {}
    camera_shard: dict[str, str] = {}
    shard_node: dict[str, str] = {}
    nodes: list[NodeSpec] = []
    epsilon: float = 0.05
    cameras_per_shard: int = 32

    def shard_cameras(self) -> dict[str, list[str]]:
        """Shard id -> sorted camera ids (the constructor input of each shard actor)."""
        out: dict[str, list[str]] = defaultdict(list)
        for cam, shard in self.camera_shard.items():
            out[shard].append(cam)
        return {s: sorted(c) for s, c in sorted(out.items())}

    def node_loads(self) -> dict[str, int]:
        """Node name -> number of cameras (every node listed, including empty ones)."""
        loads = {n.name: 0 for n in self.nodes}
        for node in self.camera_node.values():
            loads[node] += 1
        return loads


class Moves(BaseModel):
    """What changed between two assignments."""

    moved: dict[str, tuple[str, str]] = {}
    added: dict[str, str] = {}
    removed: dict[str, str] = {}
    shard_changed: dict[str, tuple[str, str]] = {}

    @property
    def n_moved(self) -> int:
        """Number of cameras that changed node."""
        return len(self.moved)


def stable_hash(*parts: str) -> int:
    """A 64-bit hash of the parts that is the same in every process and Python version (blake2b)."""
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        b = p.encode("utf-8")
        h.update(len(b).to_bytes(4, "little"))
        h.update(b)
    return int.from_bytes(h.digest(), "little")


def hrw_score(key: str, node: str, weight: float) -> float:
    """Weighted rendezvous score of ``node`` for ``key``: ``-w / ln(u)`` with ``u`` uniform in (0, 1)."""
    if weight <= 0:
        return -math.inf
    u = (stable_hash(key, node) + 0.5) / 2.0**64
    return -weight / math.log(u)


def rank_nodes(key: str, nodes: Sequence[NodeSpec]) -> list[str]:
    """Node names ordered from the most to the least preferred for ``key`` (ties broken by name)."""
    return [n.name for n in sorted(nodes, key=lambda n: (-hrw_score(key, n.name, n.weight), n.name))]


def capacities(n_items: int, nodes: Sequence[NodeSpec], epsilon: float) -> dict[str, int]:
    """Per-node cap ``ceil((1 + epsilon) * n_items * w / W)``; the caps always sum to at least ``n_items``."""
    total = sum(n.weight for n in nodes)
    if total <= 0:
        raise ShardingError("the nodes have no capacity: give each node gpus > 0 or cpus > 0")
    return {n.name: math.ceil((1.0 + epsilon) * n_items * n.weight / total - 1e-9) for n in nodes}


def _check(cameras: Sequence[str], nodes: Sequence[NodeSpec], epsilon: float, per_shard: int) -> None:
    if not nodes:
        raise ShardingError("no nodes to place cameras on: start Ray workers or list nodes in the config")
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ShardingError(f"duplicate node names: {sorted({n for n in names if names.count(n) > 1})}")
    if len(set(cameras)) != len(cameras):
        raise ShardingError("duplicate camera ids: every camera id must be unique")
    if not 0 < epsilon <= 1:
        raise ShardingError(f"epsilon must be in (0, 1], got {epsilon}")
    if per_shard < 1:
        raise ShardingError(f"cameras_per_shard must be >= 1, got {per_shard}")


def _assign_nodes(cameras: Sequence[str], nodes: Sequence[NodeSpec], previous: dict[str, str],
                  epsilon: float) -> dict[str, str]:
    caps = capacities(len(cameras), nodes, epsilon)
    names = {n.name for n in nodes}
    weights = {n.name: n.weight for n in nodes}
    new_nodes = names - set(previous.values()) if previous else set()
    loads: dict[str, int] = defaultdict(int)
    out: dict[str, str] = {}
    # deterministic processing order, independent of the input order
    order = sorted(cameras, key=lambda c: (stable_hash("order", c), c))
    # 1. cameras stay on their surviving node
    for c in order:
        node = previous.get(c)
        if node in names:
            out[c] = node
            loads[node] += 1
    # 2. nodes over their cap (more nodes now, or weights changed) shed the cameras that like them least,
    #    onto new nodes first so that an addition moves cameras only onto the added node
    for node in sorted(names):
        excess = loads[node] - caps[node]
        if excess <= 0:
            continue
        mine = sorted((c for c, n in out.items() if n == node),
                      key=lambda c: (rank_nodes(c, nodes)[0] not in new_nodes, hrw_score(c, node, weights[node]), c))
        for c in mine[:excess]:
            targets = [t for t in rank_nodes(c, nodes) if t in new_nodes and loads[t] < caps[t]]
            targets = targets or [t for t in rank_nodes(c, nodes) if t != node and loads[t] < caps[t]]
            loads[node] -= 1
            out[c] = targets[0]
            loads[targets[0]] += 1
    # 3. HRW-necessary moves: a camera whose first choice is a new node goes there while it has room
    if new_nodes:
        for c in sorted(out, key=lambda c: (stable_hash("order", c), c)):
            top = rank_nodes(c, nodes)[0]
            if top in new_nodes and loads[top] < caps[top]:
                loads[out[c]] -= 1
                out[c] = top
                loads[top] += 1
    # 4. cameras without a node (new cameras, or their node left) go to their best node with room
    for c in order:
        if c in out:
            continue
        for t in rank_nodes(c, nodes):
            if loads[t] < caps[t]:
                out[c] = t
                loads[t] += 1
                break
    return out


def _assign_shards(camera_node: dict[str, str], per_shard: int, previous: Assignment | None) -> dict[str, str]:
    """Group each node's cameras into shards ``<node>/s<k>`` of at most ``per_shard`` cameras, sticky."""
    by_node: dict[str, list[str]] = defaultdict(list)
    for c, n in camera_node.items():
        by_node[n].append(c)
    out: dict[str, str] = {}
    for node, cams in by_node.items():
        n_shards = math.ceil(len(cams) / per_shard)
        slots = [f"{node}/s{k}" for k in range(n_shards)]
        fill: dict[str, int] = defaultdict(int)
        order = sorted(cams, key=lambda c: (stable_hash("order", c), c))
        if previous is not None:
            for c in order:
                s = previous.camera_shard.get(c)
                if s in slots and fill[s] < per_shard:
                    out[c] = s
                    fill[s] += 1
        for c in order:
            if c in out:
                continue
            ranked = sorted(slots, key=lambda s: (-stable_hash(c, s), s))
            s = next(s for s in ranked if fill[s] < per_shard)
            out[c] = s
            fill[s] += 1
    return out


def assign(cameras: Iterable[str], nodes: Sequence[NodeSpec], *, previous: Assignment | None = None,
           epsilon: float = 0.05, cameras_per_shard: int = 32) -> Assignment:
    """Place cameras on nodes and in shards (weighted HRW, bounded loads, sticky to ``previous``).

    Every node carries at most ``ceil((1 + epsilon) * N * w / W)`` cameras, so max/mean load stays within
    ``1 + epsilon`` (plus rounding). With ``previous`` only the cameras that must move do move.
    """
    cams = list(cameras)
    _check(cams, nodes, epsilon, cameras_per_shard)
    prev_nodes = previous.camera_node if previous is not None else {}
    camera_node = _assign_nodes(cams, nodes, prev_nodes, epsilon)
    camera_shard = _assign_shards(camera_node, cameras_per_shard, previous)
    shard_node = {s: camera_node[c] for c, s in camera_shard.items()}
    return Assignment(camera_node=camera_node, camera_shard=camera_shard, shard_node=dict(sorted(shard_node.items())),
                      nodes=list(nodes), epsilon=epsilon, cameras_per_shard=cameras_per_shard)


def diff(old: Assignment, new: Assignment) -> Moves:
    """Cameras that moved node, appeared, disappeared, or changed shard between two assignments."""
    moved = {c: (old.camera_node[c], n) for c, n in new.camera_node.items()
             if c in old.camera_node and old.camera_node[c] != n}
    added = {c: n for c, n in new.camera_node.items() if c not in old.camera_node}
    removed = {c: n for c, n in old.camera_node.items() if c not in new.camera_node}
    shard_changed = {c: (old.camera_shard[c], s) for c, s in new.camera_shard.items()
                     if c in old.camera_shard and old.camera_shard[c] != s}
    return Moves(moved=moved, added=added, removed=removed, shard_changed=shard_changed)


def add_node(old: Assignment, node: NodeSpec) -> tuple[Assignment, Moves]:
    """The assignment after ``node`` joins, and the moves it causes (only onto ``node``)."""
    if any(n.name == node.name for n in old.nodes):
        raise ShardingError(f"node {node.name!r} is already in the assignment")
    new = assign(old.camera_node, [*old.nodes, node], previous=old, epsilon=old.epsilon,
                 cameras_per_shard=old.cameras_per_shard)
    return new, diff(old, new)


def remove_node(old: Assignment, name: str) -> tuple[Assignment, Moves]:
    """The assignment after node ``name`` leaves, and the moves it causes (only that node's cameras)."""
    rest = [n for n in old.nodes if n.name != name]
    if len(rest) == len(old.nodes):
        raise ShardingError(f"node {name!r} is not in the assignment; nodes are {[n.name for n in old.nodes]}")
    new = assign(old.camera_node, rest, previous=old, epsilon=old.epsilon, cameras_per_shard=old.cameras_per_shard)
    return new, diff(old, new)


def load_balance(a: Assignment) -> dict[str, float]:
    """Load per node relative to its fair (capacity-weighted) share, and the max/mean ratio.

    ``max_over_mean`` is ``max_i(load_i / fair_i)``, where ``fair_i = N * w_i / W``; for equal nodes this is the
    usual max/mean load.
    """
    loads = a.node_loads()
    n = sum(loads.values())
    total_w = sum(x.weight for x in a.nodes)
    rel = {x.name: (loads[x.name] / (n * x.weight / total_w) if n and x.weight > 0 else 0.0) for x in a.nodes}
    return {"max_over_mean": max(rel.values()) if rel else 0.0, **{f"rel:{k}": v for k, v in rel.items()}}


def nodes_from_ray(alive_only: bool = True) -> list[NodeSpec]:
    """The Ray cluster's nodes as :class:`NodeSpec` (name = Ray node id), with their GPUs and CPUs."""
    import ray

    out = []
    for n in ray.nodes():
        if alive_only and not n.get("Alive"):
            continue
        res = n.get("Resources", {})
        name = next((k[len(NODE_RESOURCE_PREFIX):] for k in res if k.startswith(NODE_RESOURCE_PREFIX)), n["NodeID"])
        out.append(NodeSpec(name=name, gpus=float(res.get("GPU", 0.0)), cpus=float(res.get("CPU", 0.0)),
                            ray_node_id=n["NodeID"]))
    return sorted(out, key=lambda x: x.name)


def ray_options(node: NodeSpec, *, num_cpus: float = 0.5) -> dict[str, Any]:
    """Ray ``.options(...)`` that pin a shard actor to ``node``.

    With a known Ray node id this is a hard ``NodeAffinitySchedulingStrategy`` (the actor waits rather
    than land elsewhere). Without one (a node named in config, e.g. a KubeRay worker group started with
    ``--resources '{"ssz_node:<name>": 1000}'``) the actor asks for a sliver of that custom resource.
    """
    if node.ray_node_id:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return {"num_cpus": num_cpus,
                "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node.ray_node_id, soft=False)}
    return {"num_cpus": num_cpus, "resources": {f"{NODE_RESOURCE_PREFIX}{node.name}": 0.001}}


def shard_options(a: Assignment, shard_id: str, *, num_cpus: float = 0.5) -> dict[str, Any]:
    """Ray options for the actor of ``shard_id``: its node's pinning plus a stable actor name."""
    if shard_id not in a.shard_node:
        raise ShardingError(f"unknown shard {shard_id!r}; shards are {sorted(a.shard_node)[:5]}...")
    node = next(n for n in a.nodes if n.name == a.shard_node[shard_id])
    return {**ray_options(node, num_cpus=num_cpus), "name": f"{SHARD_PREFIX}{shard_id}"}


def node_placement_group(a: Assignment, node_name: str, *, cpus_per_shard: float = 0.5) -> Any:
    """Reserve one bundle per shard of ``node_name`` on that node (a STRICT_PACK placement group).

    The group is created pinned by the node's custom resource or node id resource, so the reservation
    is made up front and the shards start together or not at all.
    """
    from ray.util.placement_group import placement_group

    node = next((n for n in a.nodes if n.name == node_name), None)
    if node is None:
        raise ShardingError(f"node {node_name!r} is not in the assignment")
    n_shards = sum(1 for s, n in a.shard_node.items() if n == node_name)
    pin = f"node:{_node_ip(node)}" if node.ray_node_id else f"{NODE_RESOURCE_PREFIX}{node.name}"
    bundles = [{"CPU": cpus_per_shard, pin: 0.001} for _ in range(max(1, n_shards))]
    return placement_group(bundles, strategy="STRICT_PACK", name=f"ssz-node:{node_name}")


def _node_ip(node: NodeSpec) -> str:
    import ray

    for n in ray.nodes():
        if n["NodeID"] == node.ray_node_id:
            return str(n["NodeManagerAddress"])
    raise ShardingError(f"Ray node {node.ray_node_id} of {node.name!r} is not in the cluster")


def simulated_nodes(n: int, *, gpus: float = 0.0, cpus: float = 8.0) -> list[NodeSpec]:
    """``n`` identical named nodes, for planning and tests without a real multi-node cluster."""
    return [NodeSpec(name=f"node-{i}", gpus=gpus, cpus=cpus) for i in range(n)]


def launch_shards(assignment: Assignment, specs: dict[str, Any], detector_factory: Any | None = None,
                  *, num_cpus: float = 0.5, **shard_kw: Any) -> dict[str, Any]:
    """Start one ``CameraShard`` actor per shard of an :class:`Assignment`, pinned to its node.

    ``specs`` maps every assigned camera id to its :class:`CameraSpec`; ``shard_kw`` are further
    :class:`ShardConfig` fields shared by all shards (gate, sampler, state_actor, sink_actor, ...).
    Returns shard id -> actor handle. The actors are named ``ssz-shard:<shard id>`` in namespace ``ssz``.
    """
    from actors.shard import ShardConfig, start_shard

    missing = sorted(set(assignment.camera_node) - set(specs))
    if missing:
        raise ValueError(f"no CameraSpec for {len(missing)} assigned cameras, e.g. {missing[:3]}")
    handles = {}
    for shard_id, cams in assignment.shard_cameras().items():
        cfg = ShardConfig(shard_id=shard_id, cameras=[specs[c] for c in cams], **shard_kw)
        handles[shard_id] = start_shard(cfg, detector_factory,
                                        ray_options=shard_options(assignment, shard_id, num_cpus=num_cpus))
    return handles


def shard_handles() -> dict[str, Any]:
    """Handles of the running camera shards (named ``ssz-shard:<id>`` in namespace ``ssz``)."""
    import ray

    from actors import RAY_NAMESPACE

    return {sid: ray.get_actor(f"{SHARD_PREFIX}{sid}", namespace=RAY_NAMESPACE) for sid in _shard_ids()}


def _shard_ids() -> list[str]:
    """Ids of the named camera shards on the cluster (names only: a shard that goes meanwhile is no error)."""
    import ray

    from actors import RAY_NAMESPACE

    return sorted(a["name"][len(SHARD_PREFIX):] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["namespace"] == RAY_NAMESPACE and a["name"].startswith(SHARD_PREFIX))


def ensure_no_shards(wait_s: float = 5.0) -> None:
    """Return when no camera shard runs on the cluster (waiting up to ``wait_s`` for just-killed ones to go).

    Two runs would share the shard names (``ssz-shard:<id>``) and the resume states; a second run must not
    start beside a running one.

    Raises
    ------
    ShardingError
        When shards of another run (``ssz run``, ``ssz eval``, ``ssz demo``, ``ssz bench chaos``) are still
        running after ``wait_s`` seconds.
    """
    deadline = time.monotonic() + wait_s
    while (running := _shard_ids()) and time.monotonic() < deadline:
        time.sleep(0.5)
    if running:
        raise ShardingError(
            f"a camera pipeline is already running on this cluster ({len(running)} shards: "
            f"{', '.join(running[:2])}{' ...' if len(running) > 2 else ''}): `ssz status` shows it; wait "
            "for it to end or stop it (Ctrl-C where it runs), then start this one again")


def status(timeout_s: float = 10.0) -> list[Any]:
    """:class:`~actors.shard.ShardStats` of every running shard (per-camera fps, gate ratio, drops, health).

    A shard that does not answer in ``timeout_s`` (dead, restarting, or still waiting for resources) is
    listed with its error instead of blocking the report.
    """
    import ray

    from actors.shard import ShardStats

    handles = shard_handles()
    refs = {sid: h.stats.remote() for sid, h in handles.items()}
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
    out = []
    for sid, ref in refs.items():
        try:
            if ref not in ready:
                raise TimeoutError(f"no answer in {timeout_s:g} s (restarting or waiting for resources)")
            out.append(ray.get(ref))
        except Exception as e:
            out.append(ShardStats.unreachable(sid, str(e).splitlines()[0]))
    return out
