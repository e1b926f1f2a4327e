"""Street graphs from the real Chiang Mai and Bangkok OSM extracts: counts, projection, PBF input."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import pytest
from pyproj import CRS

from twin import graph

# Measured once with osmnx 2.1.1 (simplify=True, largest weakly connected component).
CM_ALL = (1935, 4552)
CM_DRIVE = (1012, 2046)
BKK_ALL = (1271, 2684)


def test_chiangmai_counts_and_attributes(cm_graph: nx.MultiDiGraph) -> None:
    assert (len(cm_graph), cm_graph.number_of_edges()) == CM_ALL
    lengths = np.array([d["length"] for _, _, d in cm_graph.edges(data=True)])
    tt = np.array([d["travel_time"] for _, _, d in cm_graph.edges(data=True)])
    assert (lengths > 0).all() and (tt > 0).all()
    # Total street length of a ~3.3 x 3.4 km extract: hundreds of km of directed edges, not metres or degrees.
    assert 200_000 < lengths.sum() < 800_000


@pytest.mark.services
def test_chiangmai_drive_subset(shared_data: Path) -> None:
    G = graph.from_osm_file(shared_data / "osm_thai_cities/chiangmai_suthep_nimman_roads.osm.gz", "drive")
    assert (len(G), G.number_of_edges()) == CM_DRIVE
    drive = graph.DRIVE_CLASSES - {"service"}
    classes = [graph._classes(d["highway"]) for _, _, d in G.edges(data=True)]
    assert all(c & drive for c in classes)
    assert any("primary" in c for c in classes) and not any(c <= {"footway", "service"} for c in classes)


@pytest.mark.services
def test_bangkok_counts(bkk_graph: nx.MultiDiGraph) -> None:
    assert (len(bkk_graph), bkk_graph.number_of_edges()) == BKK_ALL
    names = {d.get("name") for _, _, d in bkk_graph.edges(data=True) if isinstance(d.get("name"), str)}
    assert "ถนนฉลองกรุง" in names


def test_projection_is_utm47_metric(cm_graph: nx.MultiDiGraph, cm_proj: nx.MultiDiGraph) -> None:
    assert CRS.from_user_input(cm_proj.graph["crs"]).to_epsg() == 32647
    xs = np.array([d["x"] for _, d in cm_proj.nodes(data=True)])
    ys = np.array([d["y"] for _, d in cm_proj.nodes(data=True)])
    # Chiang Mai (98.95E, 18.8N) in UTM 47N: easting ~ 495-500 km, northing ~ 2,078-2,082 km.
    assert 490_000 < xs.min() < xs.max() < 505_000
    assert 2_075_000 < ys.min() < ys.max() < 2_085_000
    # Extent ~3.3 km: metres, not degrees.
    assert 3_000 < xs.max() - xs.min() < 3_800
    assert graph.utm_epsg_for(98.97, 18.8) == 32647 and graph.utm_epsg_for(102.5, 14.0) == 32648


@pytest.mark.services
def test_pbf_input_matches_xml(tmp_path: Path, shared_data: Path, bkk_graph: nx.MultiDiGraph) -> None:
    pbf = tmp_path / "latkrabang.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as w:
        for obj in osmium.FileProcessor(str(shared_data / "osm_thai_cities/bangkok_latkrabang_kmitl.osm")):
            w.add(obj)
    G = graph.from_osm_file(pbf)
    assert (len(G), G.number_of_edges()) == BKK_ALL


def test_bad_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(graph.GraphError, match="not found"):
        graph.from_osm_file(tmp_path / "missing.osm")
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(b"this is not a pbf")
    with pytest.raises(graph.GraphError, match="PBF"):
        graph.from_osm_file(junk)


def test_a_clipped_extract_names_its_clipped_ways(tmp_path: Path) -> None:
    """An OSM extract cut by a bounding box: the error names the ways that lost nodes and what to do."""
    osm = tmp_path / "clipped.osm"
    osm.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6"><bounds minlat="7.000" minlon="100.470" maxlat="7.010" maxlon="100.480"/>
 <node id="1" lat="7.001" lon="100.471"/><node id="2" lat="7.002" lon="100.472"/>
 <node id="3" lat="7.003" lon="100.473"/><node id="5" lat="7.004" lon="100.471"/>
 <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><tag k="highway" v="residential"/>
  <tag k="name" v="ถนนนิพัทธ์อุทิศ 1"/></way>
 <way id="11"><nd ref="2"/><nd ref="5"/><tag k="highway" v="residential"/></way>
 <way id="12"><nd ref="9"/><nd ref="5"/><tag k="highway" v="service"/></way>
 <way id="13"><nd ref="7"/><nd ref="8"/><tag k="building" v="yes"/></way>
</osm>""", encoding="utf-8")
    assert graph.clipped_ways(osm) == [(10, "ถนนนิพัทธ์อุทิศ 1", 1, 4), (12, "", 1, 2)]  # not the building
    with pytest.raises(graph.GraphError) as e:
        graph.from_osm_file(osm)
    msg = str(e.value)
    assert "clipped by a bounding box" in msg and "2 street way(s)" in msg
    assert "way 10 'ถนนนิพัทธ์อุทิศ 1' (1 of 4 nodes missing)" in msg and "way 12 (1 of 2" in msg
    assert "complete_ways" in msg and "not a readable" not in msg
