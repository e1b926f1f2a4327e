"""The projected Chiang Mai graph round-trips through GeoParquet in the real S3 store."""

from __future__ import annotations

import io

import geopandas as gpd
import networkx as nx
import pytest
from pyproj import CRS

from twin import graphstore
from twin.objectstore import TWIN_BUCKET, Store, StoreError


def test_round_trip_keeps_nodes_edges_and_attributes(s3_store: Store, cm_proj: nx.MultiDiGraph) -> None:
    man = graphstore.save_graph(s3_store, "gs_cm", cm_proj)
    assert man.nodes_key == f"graphs/gs_cm/{man.digest}/nodes.parquet"
    assert (man.nodes, man.edges) == (len(cm_proj), cm_proj.number_of_edges())
    H = graphstore.load_graph(s3_store, "gs_cm")
    assert (len(H), H.number_of_edges()) == (len(cm_proj), cm_proj.number_of_edges())
    assert CRS.from_user_input(H.graph["crs"]).to_epsg() == 32647
    assert set(H.edges(keys=True)) == set(cm_proj.edges(keys=True))
    assert graphstore.graph_digest(H) == man.digest
    for u, v, k, d in list(cm_proj.edges(keys=True, data=True))[::97]:
        h = H.edges[u, v, k]
        for attr in ("osmid", "highway", "name", "length", "oneway", "travel_time"):
            assert h.get(attr) == d.get(attr), (u, v, k, attr)
        if "geometry" in d:
            assert h["geometry"].equals_exact(d["geometry"], 1e-6)
    # The stored edges are plain GeoParquet that any GIS tool reads, with the UTM CRS.
    edges = gpd.read_parquet(io.BytesIO(s3_store.get_bytes(TWIN_BUCKET, man.edges_key)))
    assert edges.crs.to_epsg() == 32647 and len(edges) == cm_proj.number_of_edges()


def test_saving_twice_writes_nothing_and_graphs_coexist(s3_store: Store, cm_graph: nx.MultiDiGraph,
                                                        bkk_graph: nx.MultiDiGraph) -> None:
    a = graphstore.save_graph(s3_store, "gs_two", cm_graph)
    again = graphstore.save_graph(s3_store, "gs_two", cm_graph)
    assert again.created == a.created and again.digest == a.digest
    b = graphstore.save_graph(s3_store, "gs_two", bkk_graph)
    assert [m.digest for m in graphstore.list_graphs(s3_store, "gs_two")] == [a.digest, b.digest]
    assert len(graphstore.load_graph(s3_store, "gs_two", digest=a.digest)) == len(cm_graph)
    assert len(graphstore.load_graph(s3_store, "gs_two")) == len(bkk_graph)  # newest by default
    with pytest.raises(StoreError, match="ssz twin build --city nowhere"):
        graphstore.load_graph(s3_store, "nowhere")
