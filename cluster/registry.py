"""Camera and place registry of a city: known positions from config, the rest generated on the street graph.

Where the station has not published positions, cameras and places are generated deterministically (same
config, same registry) on the zone's street graph and marked ``source="generated"``. Fixed CCTV cameras
stand at the kerb and look along the street; plate cameras watch arterial junctions; mobile cameras (van,
drone, body-worn) take their position from a GPS feed and start at the station.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import shapely
from pydantic import BaseModel

from cluster.config import CityConfig, GeoPoint, PlaceSpec, Source
from twin.graph import project, utm_transformers
from twin.kinds import CameraKind

CLASS_WEIGHT = {"primary": 3.0, "secondary": 2.5, "tertiary": 2.0, "unclassified": 1.2, "residential": 1.0,
                "living_street": 0.8, "service": 0.5, "pedestrian": 0.6, "footway": 0.3}


class Camera(BaseModel):
    """One camera of the registry."""

    id: str
    city: str
    kind: CameraKind
    mount: Literal["fixed", "mobile"]
    mobile_kind: Literal["van", "drone", "bodycam"] | None = None
    owner: Literal["police", "government", "private"]
    lon: float
    lat: float
    heading_deg: float
    fov_deg: float
    range_m: float
    faces: bool
    plates: bool
    in_zone: bool
    edge_u: int | None = None
    edge_v: int | None = None
    edge_key: int | None = None
    source: Source = Source.generated


class Place(BaseModel):
    """A key place, report point, SOS pole or QR checkpoint of the registry."""

    id: str
    city: str
    name: str
    kind: str
    lon: float
    lat: float
    in_zone: bool
    source: Source


@dataclass
class Registry:
    """Cameras and places of one city, plus the zone polygon (WGS84)."""

    city: CityConfig
    cameras: list[Camera]
    places: list[Place]
    zone: shapely.Polygon

    def cameras_frame(self) -> pd.DataFrame:
        """Cameras as a DataFrame (one row per camera)."""
        return pd.DataFrame([c.model_dump(mode="json") for c in self.cameras])

    def places_frame(self) -> pd.DataFrame:
        """Places as a DataFrame (one row per place)."""
        return pd.DataFrame([p.model_dump(mode="json") for p in self.places])


def zone_polygon(city: CityConfig) -> tuple[shapely.Polygon, shapely.Polygon]:
    """The zone as a disc of the configured area around its centre: (WGS84, UTM) polygons."""
    to_utm, to_wgs = utm_transformers(city.utm_epsg)
    cx, cy = to_utm.transform(city.zone.centre.lon, city.zone.centre.lat)
    r = math.sqrt(city.zone.area_km2 * 1e6 / math.pi)
    utm = shapely.Point(cx, cy).buffer(r, quad_segs=32)
    wgs = shapely.ops.transform(to_wgs.transform, utm)
    return wgs, utm


def _edges(P: nx.MultiDiGraph) -> gpd.GeoDataFrame:
    e = ox.convert.graph_to_gdfs(P, nodes=False, fill_edge_geometry=True).reset_index()
    e = e[e["u"] != e["v"]]
    # One record per street, whatever its direction.
    e["pair"] = [tuple(sorted(t)) for t in zip(e["u"], e["v"], strict=True)]
    e = e.drop_duplicates("pair")
    hwy = e["highway"].map(lambda h: h[0] if isinstance(h, list) else h)
    e["w"] = e["length"] * hwy.map(CLASS_WEIGHT).fillna(0.5)
    e["hwy"] = hwy
    return e


def _longest_line(g: shapely.Geometry) -> shapely.LineString | None:
    lines = [p for p in getattr(g, "geoms", [g]) if isinstance(p, shapely.LineString) and not p.is_empty]
    return max(lines, key=lambda p: p.length) if lines else None


def _pick_on_edges(e: gpd.GeoDataFrame, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if n == 0 or len(e) == 0:
        return np.empty(0, dtype=int), np.empty(0)
    p = e["w"].to_numpy(float)
    idx = rng.choice(len(e), size=n, replace=True, p=p / p.sum())
    return idx, rng.uniform(0.1, 0.9, size=n)


def _point_and_bearing(line: shapely.LineString, frac: float) -> tuple[float, float, float]:
    d = frac * line.length
    a = line.interpolate(max(0.0, d - 1.0))
    b = line.interpolate(min(line.length, d + 1.0))
    here = line.interpolate(d)
    bearing = (math.degrees(math.atan2(b.x - a.x, b.y - a.y)) + 360) % 360
    return here.x, here.y, bearing


def build_registry(city: CityConfig, G: nx.MultiDiGraph) -> Registry:
    """Generate the camera and place registry of a city on its WGS84 street graph (deterministic)."""
    rng = np.random.default_rng(city.cameras.seed)
    P = project(G, city.utm_epsg)
    _, to_wgs = utm_transformers(city.utm_epsg)
    zone_wgs, zone_utm = zone_polygon(city)
    e = _edges(P)
    inside = e.geometry.intersects(zone_utm).to_numpy()
    e_in, e_out = e[inside].copy(), e[~inside] if (~inside).any() else e
    # Zone cameras are placed on the part of each street that lies inside the zone.
    e_in["geometry"] = [_longest_line(g.intersection(zone_utm)) for g in e_in.geometry]
    e_in = e_in[[g is not None and g.length > 2.0 for g in e_in.geometry]]
    e_in["w"] = e_in.geometry.length * e_in["hwy"].map(CLASS_WEIGHT).fillna(0.5)
    if len(e_in) == 0:
        raise ValueError(f"{city.id}: the zone around {city.zone.centre} has no streets on the graph")
    fleet = city.cameras
    owners = list(fleet.owner_share)
    shares = np.array([fleet.owner_share[o] for o in owners])

    cams: list[Camera] = []
    n_in = round(fleet.count * fleet.in_zone_share)
    for group, n in ((e_in, n_in), (e_out, fleet.count - n_in)):
        idx, frac = _pick_on_edges(group, n, rng)
        for i, f in zip(idx, frac, strict=True):
            row = group.iloc[int(i)]
            x, y, bearing = _point_and_bearing(row.geometry, float(f))
            side = rng.choice([-1.0, 1.0])
            # Mounted at the kerb about 5 m from the centreline, looking along the street.
            x += side * 5.0 * math.cos(math.radians(bearing))
            y -= side * 5.0 * math.sin(math.radians(bearing))
            heading = (bearing + (180.0 if rng.random() < 0.5 else 0.0) + rng.normal(0, 10)) % 360
            lon, lat = to_wgs.transform(x, y)
            cams.append(Camera(
                id=f"{city.id}-cam-{len(cams) + 1:04d}", city=city.id, kind=CameraKind.cctv, mount="fixed",
                owner=str(rng.choice(owners, p=shares)), lon=lon, lat=lat, heading_deg=round(heading, 1),
                fov_deg=round(float(rng.uniform(*fleet.fov_deg)), 1),
                range_m=round(float(rng.uniform(*fleet.range_m)), 1), faces=True, plates=False,
                in_zone=bool(zone_utm.contains(shapely.Point(x, y))), edge_u=int(row.u), edge_v=int(row.v),
                edge_key=int(row.key)))

    # Plate cameras watch the approaches of the busiest junctions (arterial classes first).
    arterial = e[e["hwy"].isin(["primary", "secondary", "tertiary"])]
    arterial = arterial if len(arterial) else e
    order = rng.permutation(len(arterial))
    zone_first = sorted(order, key=lambda i: not bool(arterial.iloc[int(i)].geometry.intersects(zone_utm)))
    for k in range(fleet.plate_count):
        row = arterial.iloc[int(zone_first[k % len(zone_first)])]
        x, y, bearing = _point_and_bearing(row.geometry, 0.85)
        lon, lat = to_wgs.transform(x, y)
        cams.append(Camera(
            id=f"{city.id}-lpr-{k + 1:03d}", city=city.id, kind=CameraKind.plate, mount="fixed", owner="police",
            lon=lon, lat=lat, heading_deg=round((bearing + 180) % 360, 1), fov_deg=35.0, range_m=20.0,
            faces=False, plates=True, in_zone=bool(zone_utm.contains(shapely.Point(x, y))),
            edge_u=int(row.u), edge_v=int(row.v), edge_key=int(row.key)))
    for m in fleet.mobile:
        cams.append(Camera(
            id=m.id, city=city.id, kind=CameraKind.mobile, mount="mobile", mobile_kind=m.kind, owner="police",
            lon=city.station.lon, lat=city.station.lat, heading_deg=0.0, fov_deg=90.0, range_m=30.0,
            faces=m.face_detection, plates=m.kind == "van", in_zone=True, source=Source.surveyed))

    places = _places(city, e_in, zone_utm, zone_wgs, rng, to_wgs)
    return Registry(city=city, cameras=cams, places=places, zone=zone_wgs)


def _places(city: CityConfig, e_in: gpd.GeoDataFrame, zone_utm: shapely.Polygon, zone_wgs: shapely.Polygon,
            rng: np.random.Generator, to_wgs: object) -> list[Place]:
    places: list[Place] = []

    def add(spec: PlaceSpec, prefix: str) -> None:
        loc: GeoPoint | None = spec.location
        if loc is None:
            idx, frac = _pick_on_edges(e_in, 1, rng)
            x, y, _ = _point_and_bearing(e_in.iloc[int(idx[0])].geometry, float(frac[0]))
            lon, lat = to_wgs.transform(x, y)  # type: ignore[attr-defined]
        else:
            lon, lat = loc.lon, loc.lat
        places.append(Place(id=f"{city.id}-{prefix}-{len(places) + 1:03d}", city=city.id, name=spec.name,
                            kind=prefix if prefix in {"sos", "qr"} else spec.kind.value, lon=lon, lat=lat,
                            in_zone=bool(zone_wgs.contains(shapely.Point(lon, lat))), source=spec.source))

    for spec in city.places:
        add(spec, "place")
    named = {(p.kind.value) for p in city.places}
    for kind, count in city.key_places.items():
        have = sum(1 for p in city.places if p.kind == kind)
        for i in range(max(0, count - have) if kind.value in named else count):
            add(PlaceSpec(name=f"{kind.value.replace('_', ' ')} {i + 1}", kind=kind), "place")
    for spec in city.sos_poles:
        add(spec, "sos")
    for i in range(city.checkpoints):
        add(PlaceSpec(name=f"QR red box {i + 1}", kind="junction"), "qr")
    return places
