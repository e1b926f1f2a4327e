"""Loading a city's street graph from its config: the one place that maps ``GraphSpec`` to ``twin.graph``."""

from __future__ import annotations

import networkx as nx

from cluster.config import CityConfig, city_path
from twin import graph


def load_city_graph(city: CityConfig) -> nx.MultiDiGraph:
    """The city's WGS84 street graph from its configured source (file, place, bbox or generated)."""
    spec = city.street_graph
    if spec.kind == "osm_file":
        return graph.from_osm_file(spec.resolved_path(city_path(city.id).parent), spec.network_type)
    if spec.kind == "place":
        assert spec.place is not None
        return graph.from_place(spec.place, spec.network_type)
    if spec.kind == "bbox":
        assert spec.bbox is not None
        return graph.from_bbox(spec.bbox, spec.network_type)
    return graph.generated(city.zone.centre.lon, city.zone.centre.lat, epsg=city.utm_epsg,
                           extent_m=spec.extent_m, block_m=spec.block_m, seed=spec.seed)
