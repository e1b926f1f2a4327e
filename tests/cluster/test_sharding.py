"""Sharding: balance of 617 cameras over 4 nodes, minimal moves on node loss/addition, stable hashing, placement."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from cluster import sharding as S

CAMS = [f"hatyai-cam-{i:04d}" for i in range(617)]


def test_617_cameras_on_4_nodes_are_balanced() -> None:
    a = S.assign(CAMS, S.simulated_nodes(4))
    loads = a.node_loads()
    assert sum(loads.values()) == 617 and set(a.camera_node) == set(CAMS)
    assert max(loads.values()) / (617 / 4) <= 1.1
    assert S.load_balance(a)["max_over_mean"] <= 1.1
    # every shard is on one node and holds at most cameras_per_shard cameras
    for shard, cams in a.shard_cameras().items():
        assert len(cams) <= a.cameras_per_shard
        assert {a.camera_node[c] for c in cams} == {a.shard_node[shard]}


def test_plain_hrw_ranking_is_used_when_room_allows() -> None:
    """With a generous bound nobody is displaced: the assignment is exactly plain weighted HRW."""
    nodes = S.simulated_nodes(4)
    a = S.assign(CAMS, nodes, epsilon=1.0)
    assert all(a.camera_node[c] == S.rank_nodes(c, nodes)[0] for c in CAMS)
    plain = Counter(a.camera_node.values())
    # and the bounded version differs from it only by cameras moved off overloaded nodes
    b = S.assign(CAMS, nodes)
    moved = [c for c in CAMS if a.camera_node[c] != b.camera_node[c]]
    assert all(plain[a.camera_node[c]] > b.node_loads()[a.camera_node[c]] for c in moved)


def test_removing_a_node_moves_only_its_cameras() -> None:
    a = S.assign(CAMS, S.simulated_nodes(4))
    gone = a.node_loads()["node-2"]
    b, moves = S.remove_node(a, "node-2")
    assert moves.n_moved == gone
    assert {src for src, _ in moves.moved.values()} == {"node-2"}
    for c in CAMS:
        if a.camera_node[c] != "node-2":
            assert b.camera_node[c] == a.camera_node[c]
            assert b.camera_shard[c] == a.camera_shard[c]
    assert S.load_balance(b)["max_over_mean"] <= 1.1
    assert "node-2" not in b.node_loads()


def test_adding_a_node_moves_cameras_only_onto_it() -> None:
    a = S.assign(CAMS, S.simulated_nodes(4))
    b, moves = S.add_node(a, S.NodeSpec(name="node-new", cpus=8))
    assert moves.n_moved > 0
    assert {dst for _, dst in moves.moved.values()} == {"node-new"}
    assert moves.n_moved == b.node_loads()["node-new"]
    assert S.load_balance(b)["max_over_mean"] <= 1.1
    # no more moves than needed to bring the new node to its bounded share
    assert moves.n_moved <= S.capacities(617, b.nodes, b.epsilon)["node-new"]


def test_gpu_count_weights_the_share() -> None:
    nodes = [S.NodeSpec(name="gpu4", gpus=4, cpus=16), S.NodeSpec(name="gpu2a", gpus=2, cpus=64),
             S.NodeSpec(name="gpu2b", gpus=2, cpus=64)]
    a = S.assign(CAMS, nodes)
    loads = a.node_loads()
    assert loads["gpu4"] == pytest.approx(617 / 2, rel=0.1)
    assert S.load_balance(a)["max_over_mean"] <= 1.1
    cpu_only = [S.NodeSpec(name="c8", cpus=8), S.NodeSpec(name="c24", cpus=24)]
    assert S.assign(CAMS, cpu_only).node_loads()["c24"] == pytest.approx(617 * 0.75, rel=0.1)


def test_assignment_independent_of_input_order_and_hash_seed() -> None:
    nodes = S.simulated_nodes(4)
    a = S.assign(CAMS, nodes)
    assert S.assign(list(reversed(CAMS)), list(reversed(nodes))).camera_node == a.camera_node
    code = ("from cluster import sharding as S;import json;"
            "a=S.assign([f'hatyai-cam-{i:04d}' for i in range(617)],S.simulated_nodes(4));"
            "print(json.dumps(a.camera_node,sort_keys=True))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    import json

    assert json.loads(out) == a.camera_node


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(S.ShardingError, match="no nodes"):
        S.assign(CAMS, [])
    with pytest.raises(S.ShardingError, match="duplicate camera"):
        S.assign(["a", "a"], S.simulated_nodes(2))
    with pytest.raises(S.ShardingError, match="no capacity"):
        S.assign(["a"], [S.NodeSpec(name="x", cpus=0)])
    a = S.assign(CAMS[:10], S.simulated_nodes(2))
    with pytest.raises(S.ShardingError, match="not in the assignment"):
        S.remove_node(a, "nope")


def test_ray_options_pin_shards_to_their_node(ray_cluster: str) -> None:
    import ray

    nodes = S.nodes_from_ray()
    assert nodes and nodes[0].ray_node_id
    a = S.assign(CAMS[:40], nodes, cameras_per_shard=16)
    assert len(a.shard_node) == 3

    @ray.remote
    class Where:
        def node(self) -> str:
            return ray.get_runtime_context().get_node_id()

    shard = sorted(a.shard_node)[0]
    opts = S.shard_options(a, shard, num_cpus=0.1)
    actor = Where.options(**opts).remote()
    try:
        assert ray.get(actor.node.remote(), timeout=60) == nodes[0].ray_node_id
    finally:
        ray.kill(actor)
    # a named node without a Ray id asks for its custom resource
    opts2 = S.ray_options(S.NodeSpec(name="edge-7"))
    assert opts2["resources"] == {"ssz_node:edge-7": 0.001}


def test_node_placement_group_reserves_the_node_up_front(ray_cluster: str) -> None:
    import ray
    from ray.util.placement_group import remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    nodes = S.nodes_from_ray()
    a = S.assign(CAMS[:20], nodes, cameras_per_shard=8)
    pg = S.node_placement_group(a, nodes[0].name, cpus_per_shard=0.05)
    try:
        assert pg.wait(30)
        assert len(pg.bundle_specs) == len(a.shard_node) == 3

        @ray.remote(num_cpus=0.05)
        def where() -> str:
            return ray.get_runtime_context().get_node_id()

        strat = PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=2)
        assert ray.get(where.options(scheduling_strategy=strat).remote(), timeout=60) == nodes[0].ray_node_id
    finally:
        remove_placement_group(pg)
    with pytest.raises(S.ShardingError, match="not in the assignment"):
        S.node_placement_group(a, "ghost")


def test_a_second_run_is_refused_while_shards_of_another_run_are_running(ray_cluster: str, monkeypatch) -> None:
    """`ssz run` beside a running `ssz run` said only Ray's 'name ... is already taken' (after clearing the running
    shards' resume states); it is refused first, naming the running shard. A second `ssz eval` is refused before
    it enrols (then withdraws) the simulation list the running one matches against."""
    import functools

    import ray

    from actors import RAY_NAMESPACE
    from cluster import serving
    from cluster.sim import run as simrun

    @ray.remote(num_cpus=0)
    class Idle:
        def ping(self) -> bool:
            return True

    S.ensure_no_shards(wait_s=0)  # nothing runs: no error
    other = Idle.options(name=f"{S.SHARD_PREFIX}node-0/s7", namespace=RAY_NAMESPACE).remote()
    ray.get(other.ping.remote())
    try:
        with pytest.raises(S.ShardingError, match=r"already running on this cluster \(1 shards: node-0/s7\).*ssz "
                                                  r"status"):
            S.ensure_no_shards(wait_s=0.5)
        monkeypatch.setattr(S, "ensure_no_shards", functools.partial(S.ensure_no_shards, wait_s=0.5))
        touched: list[str] = []
        monkeypatch.setattr(serving, "ensure_up", lambda: touched.append("api") or "http://127.0.0.1:1")
        monkeypatch.setattr(simrun, "enrol", lambda *a: touched.append("enrol") or {})
        with pytest.raises(S.ShardingError, match="already running"):
            simrun.run(object(), api_url="http://127.0.0.1:1")  # type: ignore[arg-type]
        assert touched == []
    finally:
        ray.kill(other)
    S.ensure_no_shards()  # a killed run's shards are waited for, not taken for a running one
