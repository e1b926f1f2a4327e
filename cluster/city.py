"""One city, loaded once: its validated config, its street graph and its camera and place registry.

:func:`load_city_graph` is the one place that maps a config's ``GraphSpec`` to :mod:`twin.graph`.
:class:`CityModel` is what a command builds once and hands to every step (the twin build, the map, the
simulation, planning), so that no step loads the graph or generates the registry again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from cluster.config import CityConfig, city_path, load_city
from cluster.registry import Registry, build_registry
from twin import graph


def load_city_graph(city: CityConfig) -> nx.MultiDiGraph:
    """The city's WGS84 street graph from its configured source (file, place, bbox or generated).

    Parameters
    ----------
    city
        The validated city config; ``city.street_graph`` says where the graph comes from.

    Returns
    -------
    networkx.MultiDiGraph
        The street graph in WGS84 (node ``x`` = lon, ``y`` = lat; edge ``length`` in metres).
    """
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


@dataclass
class CityModel:
    """A city as every command needs it: config, WGS84 street graph, its UTM projection and the registry.

    Build it once with :meth:`load` and pass it on; the projected graph is made on first use.
    """

    config: CityConfig
    graph: nx.MultiDiGraph
    registry: Registry
    _projected: nx.MultiDiGraph | None = field(default=None, repr=False)

    @classmethod
    def load(cls, city: str | CityConfig) -> CityModel:
        """Load a city (bundled id, YAML path or a validated config): its graph and its registry.

        Raises
        ------
        cluster.config.ConfigError
            When the city is unknown or its file is invalid.
        """
        cfg = city if isinstance(city, CityConfig) else load_city(city)
        G = load_city_graph(cfg)
        return cls(config=cfg, graph=G, registry=build_registry(cfg, G))

    @property
    def id(self) -> str:
        """The city id (``hatyai``)."""
        return self.config.id

    @property
    def projected(self) -> nx.MultiDiGraph:
        """The street graph projected to the city's UTM zone (metres), made once."""
        if self._projected is None:
            self._projected = graph.project(self.graph, self.config.utm_epsg)
        return self._projected


def city_model(city: str | CityConfig | CityModel) -> CityModel:
    """``city`` as a :class:`CityModel` (loaded when given as an id, a path or a config)."""
    return city if isinstance(city, CityModel) else CityModel.load(city)
