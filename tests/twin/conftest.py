"""Twin test fixtures: the real Chiang Mai and Bangkok OSM street graphs, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from twin import graph

CHIANGMAI_ROADS = "osm_thai_cities/chiangmai_suthep_nimman_roads.osm.gz"
BANGKOK_OSM = "osm_thai_cities/bangkok_latkrabang_kmitl.osm"


@pytest.fixture(scope="session")
def osm_dir(shared_data: Path) -> Path:
    """The shared folder with the real OSM extracts."""
    d = shared_data / "osm_thai_cities"
    assert d.is_dir(), f"{d} is missing"
    return d


@pytest.fixture(scope="session")
def cm_graph(shared_data: Path) -> nx.MultiDiGraph:
    """Chiang Mai (Suthep / Nimmanhaemin) street graph, WGS84, all street classes."""
    return graph.from_osm_file(shared_data / CHIANGMAI_ROADS)


@pytest.fixture(scope="session")
def cm_proj(cm_graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """The Chiang Mai graph projected to UTM 47N."""
    return graph.project(cm_graph, 32647)


@pytest.fixture(scope="session")
def bkk_graph(shared_data: Path) -> nx.MultiDiGraph:
    """Bangkok Lat Krabang street graph, WGS84."""
    return graph.from_osm_file(shared_data / BANGKOK_OSM)
