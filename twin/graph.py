"""Street graphs of a zone with osmnx: from a local OSM file, an OSM place or bbox, or generated.

Every loader returns an osmnx ``MultiDiGraph`` in WGS84 with edge ``length`` (m), ``speed_kph`` and
``travel_time`` (s); :func:`project` puts it in the zone's UTM CRS for metric work. Offline machines use
``from_osm_file`` or ``generated``; ``from_place`` / ``from_bbox`` need the internet or an Overpass
mirror (``SSZ_OSM_OVERPASS_URL``).
"""

from __future__ import annotations

import bz2
import gzip
import math
import os
import shutil
import tempfile
from pathlib import Path

import networkx as nx
import numpy as np
import osmnx as ox
from pyproj import Transformer

# Typical urban speeds (km/h) by OSM highway class, used where ways carry no maxspeed tag.
HWY_SPEEDS: dict[str, float] = {
    "motorway": 90, "trunk": 70, "primary": 50, "secondary": 40, "tertiary": 35, "unclassified": 30,
    "residential": 25, "living_street": 15, "service": 15, "track": 15, "pedestrian": 5, "footway": 5,
    "path": 5, "steps": 3, "cycleway": 15,
}
DRIVE_CLASSES = {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary",
                 "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential",
                 "living_street", "service"}


class GraphError(ValueError):
    """The street graph cannot be built from what was given; the message says why."""


def _finish(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    if G.number_of_edges() == 0:
        raise GraphError("the street graph has no edges: check the source covers streets")
    G = ox.routing.add_edge_speeds(G, hwy_speeds=HWY_SPEEDS, fallback=25)
    return ox.routing.add_edge_travel_times(G)


def _first(v: object) -> str:
    return str(v[0]) if isinstance(v, list) else str(v)


def _classes(v: object) -> set[str]:
    return {str(x) for x in v} if isinstance(v, list) else {str(v)}


def filter_network(G: nx.MultiDiGraph, network_type: str) -> nx.MultiDiGraph:
    """Keep the edges of a network type, then the largest (weakly) connected part.

    Parameters
    ----------
    G
        A street graph (any CRS).
    network_type
        ``drive`` keeps drivable classes, ``drive_service`` also service roads, ``all`` (or anything else) keeps
        every edge.

    Returns
    -------
    networkx.MultiDiGraph
        A new graph (``G`` itself for ``all``).
    """
    if network_type == "all":
        return G
    keep = DRIVE_CLASSES if network_type.startswith("drive") else None
    if keep is None:
        return G
    if network_type == "drive":
        keep = keep - {"service"}
    # A simplified edge may merge ways of several classes (a list, in no fixed order): keep it if any is kept.
    H = G.edge_subgraph([(u, v, k) for u, v, k, d in G.edges(keys=True, data=True)
                         if _classes(d.get("highway", "")) & keep]).copy()
    return ox.truncate.largest_component(H, strongly=False)


def pbf_to_xml(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Convert an OSM PBF file to OSM XML with pyosmium (osmnx reads XML only).

    Parameters
    ----------
    src, dst
        The PBF file and the XML file to write.

    Returns
    -------
    pathlib.Path
        ``dst``.
    """
    try:
        import osmium
    except ImportError as e:
        raise GraphError(f"{src}: reading PBF needs the `osmium` package (pip install osmium), or convert it "
                         "to XML first: `osmium cat in.osm.pbf -o out.osm` (Debian package osmium-tool)") from e
    dst = Path(dst)
    dst.unlink(missing_ok=True)
    try:
        with osmium.SimpleWriter(str(dst)) as w:
            for obj in osmium.FileProcessor(str(src)):
                w.add(obj)
    except Exception as e:
        raise GraphError(f"{src}: not a readable OSM PBF file ({type(e).__name__}: {e})") from e
    return dst


def from_osm_file(path: str | os.PathLike[str], network_type: str = "all") -> nx.MultiDiGraph:
    """Build the street graph from a local OSM file, offline.

    Parameters
    ----------
    path
        An ``.osm``, ``.osm.gz``, ``.osm.bz2`` or ``.osm.pbf`` file.
    network_type
        Which streets to keep (see :func:`filter_network`).

    Returns
    -------
    networkx.MultiDiGraph
        The simplified WGS84 graph (node ``x`` = lon, ``y`` = lat in degrees; edge ``length`` in metres).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise GraphError(f"OSM file {p} not found: check the path or SSZ_SHARED_DATA")
    with tempfile.TemporaryDirectory() as tmp:
        src = p
        if p.suffix == ".pbf":
            src = pbf_to_xml(p, Path(tmp) / (p.stem.removesuffix(".osm") + ".osm"))
        elif p.suffix == ".gz":
            src = Path(tmp) / p.with_suffix("").name
            with gzip.open(p, "rb") as fi, open(src, "wb") as fo:
                shutil.copyfileobj(fi, fo)
        elif p.suffix == ".bz2":
            src = Path(tmp) / p.with_suffix("").name
            with bz2.open(p, "rb") as fi, open(src, "wb") as fo:
                shutil.copyfileobj(fi, fo)
        try:
            G = ox.graph_from_xml(src, bidirectional=False, simplify=True, retain_all=False)
        except Exception as e:
            clipped = clipped_ways(src)
            if clipped:
                shown = "; ".join(f"way {w}" + (f" {n!r}" if n else "") + f" ({k} of {t} nodes missing)"
                                  for w, n, k, t in clipped[:5])
                raise GraphError(
                    f"{p}: the extract was clipped by a bounding box: {len(clipped)} street way(s) refer to nodes "
                    f"that are not in the file: {shown}{' …' if len(clipped) > 5 else ''}. What to do: extract "
                    "again keeping whole ways (osmium extract --strategy complete_ways, or Overpass with "
                    "'(way(bbox);>;)'), or remove these ways") from e
            raise GraphError(f"{p}: not a readable OSM XML file ({type(e).__name__}: {e})") from e
    return _finish(filter_network(G, network_type))


def clipped_ways(path: str | os.PathLike[str]) -> list[tuple[int, str, int, int]]:
    """Street ways of an OSM XML file that refer to nodes missing from it (an extract cut by a bounding box).

    Returns
    -------
    list of (way id, name or "", missing node refs, node refs)
        In file order; empty when every ``highway`` way is complete or the file is not OSM XML.
    """
    import xml.etree.ElementTree as ET

    nodes: set[str] = set()
    ways: list[tuple[str, str, list[str]]] = []
    try:
        for _, el in ET.iterparse(str(path), events=("end",)):
            if el.tag == "node":
                nodes.add(el.get("id", ""))
            elif el.tag == "way":
                tags = {t.get("k"): t.get("v") for t in el.iter("tag")}
                if "highway" in tags:
                    ways.append((el.get("id", ""), tags.get("name") or "", [n.get("ref", "") for n in el.iter("nd")]))
            if el.tag in ("node", "way", "relation"):
                el.clear()
    except (ET.ParseError, OSError):
        return []
    out = []
    for wid, name, refs in ways:
        missing = sum(r not in nodes for r in refs)
        if missing:
            out.append((int(wid) if wid.lstrip("-").isdigit() else 0, name, missing, len(refs)))
    return out


def _configure_overpass() -> None:
    url = os.environ.get("SSZ_OSM_OVERPASS_URL")
    if url:
        ox.settings.overpass_url = url


def from_place(place: str, network_type: str = "all") -> nx.MultiDiGraph:
    """Download the street graph of a named place from OpenStreetMap.

    Needs the internet or an Overpass mirror in ``SSZ_OSM_OVERPASS_URL``.

    Parameters
    ----------
    place
        A geocodable name, e.g. ``"Hat Yai, Songkhla, Thailand"``.
    network_type
        Which streets to keep (see :func:`filter_network`).

    Returns
    -------
    networkx.MultiDiGraph
        The WGS84 graph (edge ``length`` in metres).
    """
    _configure_overpass()
    try:
        G = ox.graph_from_place(place, network_type=network_type, retain_all=False)
    except Exception as e:
        raise GraphError(f"could not download the street graph of {place!r}: {e}. Offline, use an OSM "
                         "file (street_graph.kind: osm_file) or a generated graph") from e
    return _finish(G)


def from_bbox(bbox: tuple[float, float, float, float], network_type: str = "all") -> nx.MultiDiGraph:
    """Download the street graph in a box from OpenStreetMap (internet or ``SSZ_OSM_OVERPASS_URL``).

    Parameters
    ----------
    bbox
        ``(left, bottom, right, top)`` in WGS84 degrees (osmnx 2 order).
    network_type
        Which streets to keep (see :func:`filter_network`).

    Returns
    -------
    networkx.MultiDiGraph
        The WGS84 graph (edge ``length`` in metres).
    """
    _configure_overpass()
    try:
        G = ox.graph_from_bbox(bbox, network_type=network_type, retain_all=False)
    except Exception as e:
        raise GraphError(f"could not download the street graph for bbox {bbox}: {e}") from e
    return _finish(G)


def utm_transformers(epsg: int) -> tuple[Transformer, Transformer]:
    """The transformers between WGS84 lon/lat and a metric CRS, with lon/lat axis order.

    Parameters
    ----------
    epsg
        The metric CRS, e.g. 32647 (UTM 47N).

    Returns
    -------
    to_utm, to_wgs84
        pyproj Transformers: ``to_utm.transform(lon, lat) -> (x, y)`` in metres and back.
    """
    return (Transformer.from_crs(4326, epsg, always_xy=True), Transformer.from_crs(epsg, 4326, always_xy=True))


def generated(centre_lon: float, centre_lat: float, epsg: int = 32647, extent_m: float = 3000.0,
              block_m: float = 110.0, seed: int = 0) -> nx.MultiDiGraph:
    """A deterministic city-like street network around a centre, for cities with no offline OSM extract.

    A jittered grid of blocks with arterial roads every fifth line (primary/secondary), a diagonal
    avenue, residential streets, a few one-way streets and some missing links, so that routing and
    coverage behave like a real town. Same arguments, same graph. Every edge carries ``source=generated``.

    Parameters
    ----------
    centre_lon, centre_lat
        The centre (WGS84 degrees).
    epsg
        The metric CRS the grid is laid out in.
    extent_m
        Side of the square town (m).
    block_m
        Block size (m).
    seed
        Random seed.

    Returns
    -------
    networkx.MultiDiGraph
        The WGS84 graph (edge ``length`` in metres, ``highway`` class, ``oneway``).
    """
    rng = np.random.default_rng(seed)
    to_utm, to_wgs = utm_transformers(epsg)
    cx, cy = to_utm.transform(centre_lon, centre_lat)
    n = max(3, math.ceil(extent_m / block_m) + 1)
    off = (n - 1) * block_m / 2
    jitter = rng.uniform(-0.15, 0.15, size=(n, n, 2)) * block_m
    G = nx.MultiDiGraph(crs="epsg:4326", name="generated")
    nid = lambda i, j: 1_000_000 + i * n + j  # noqa: E731
    for i in range(n):
        for j in range(n):
            x = cx - off + j * block_m + jitter[i, j, 0]
            y = cy - off + i * block_m + jitter[i, j, 1]
            lon, lat = to_wgs.transform(x, y)
            G.add_node(nid(i, j), x=float(lon), y=float(lat), _ux=float(x), _uy=float(y))

    def cls(line: int) -> str:
        if line == n // 2:
            return "primary"
        if line % 5 == 0:
            return "secondary"
        if line % 5 == 2:
            return "tertiary"
        return "residential"

    def add(a: int, b: int, hwy: str, name: str, oneway: bool) -> None:
        ax, ay = G.nodes[a]["_ux"], G.nodes[a]["_uy"]
        bx, by = G.nodes[b]["_ux"], G.nodes[b]["_uy"]
        length = float(math.hypot(bx - ax, by - ay))
        attrs = dict(osmid=G.graph.setdefault("_next_way", 1), highway=hwy, name=name, length=length,
                     oneway=oneway, source="generated")
        G.add_edge(a, b, reversed=False, **attrs)
        if not oneway:
            G.add_edge(b, a, reversed=True, **attrs)
        G.graph["_next_way"] += 1

    for i in range(n):
        for j in range(n):
            for di, dj, line, label in ((0, 1, i, "ถนนสาย"), (1, 0, j, "ซอย")):
                ii, jj = i + di, j + dj
                if ii >= n or jj >= n:
                    continue
                hwy = cls(line)
                if hwy == "residential" and rng.random() < 0.12:
                    continue  # a missing link: blocks are not all equal
                oneway = hwy == "residential" and rng.random() < 0.15
                a, b = nid(i, j), nid(ii, jj)
                if oneway and rng.random() < 0.5:
                    a, b = b, a
                add(a, b, hwy, f"{label} {line + 1}", oneway)
    for k in range(n - 1):  # a diagonal avenue through the centre
        add(nid(k, k), nid(k + 1, k + 1), "secondary", "ถนนเส้นทแยง", False)
    for _, d in G.nodes(data=True):
        d.pop("_ux"), d.pop("_uy")
    G.graph.pop("_next_way", None)
    for node in G.nodes:
        G.nodes[node]["street_count"] = len(set(G.successors(node)) | set(G.predecessors(node)))
    G = ox.truncate.largest_component(G, strongly=True)
    return _finish(G)


def project(G: nx.MultiDiGraph, epsg: int = 32647) -> nx.MultiDiGraph:
    """The graph in a metric CRS (the zone's UTM zone; EPSG:32647 covers most of Thailand).

    Parameters
    ----------
    G
        A WGS84 street graph.
    epsg
        The metric CRS.

    Returns
    -------
    networkx.MultiDiGraph
        A new graph with node ``x``/``y`` and edge geometries in metres.
    """
    return ox.projection.project_graph(G, to_crs=f"EPSG:{epsg}")


def utm_epsg_for(lon: float, lat: float) -> int:
    """The WGS84 UTM EPSG code for a position.

    Parameters
    ----------
    lon, lat
        WGS84 degrees.

    Returns
    -------
    int
        326xx north of the equator, 327xx south (32647 for most of Thailand, 32648 east of 102°E).
    """
    zone = int((lon + 180) // 6) + 1
    return (32600 if lat >= 0 else 32700) + zone
