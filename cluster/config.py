"""City and zone configuration: pydantic models and the YAML loader.

One YAML file per police station's city lives in ``cluster/cities``. A file is validated into a
:class:`CityConfig`; a bad file raises :class:`ConfigError` naming the file, the field and the reason,
so an operator editing a config sees at once what to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CITIES_DIR = Path(__file__).resolve().parent / "cities"
REPO_ROOT = Path(__file__).resolve().parents[1]
# The city the notebooks work on when set (``ssz lab --city`` sets it for the lab's kernels): read by chosen_city.
CITY_ENV = "SSZ_CITY"


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names file, field and reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GeoPoint(_Strict):
    """A WGS84 position."""

    lon: Annotated[float, Field(ge=-180, le=180, description="WGS84 longitude (degrees, -180..180)")]
    lat: Annotated[float, Field(ge=-90, le=90, description="WGS84 latitude (degrees, -90..90)")]


class Source(StrEnum):
    """Where a position comes from: surveyed by the station, taken from OSM, or generated here."""

    surveyed = "surveyed"
    osm = "osm"
    approximate = "approximate"
    generated = "generated"


class PlaceKind(StrEnum):
    """Kinds of key places that raise or lower risk or that patrols visit."""

    police_station = "police_station"
    tourist_police = "tourist_police"
    school = "school"
    market = "market"
    gold_shop = "gold_shop"
    bank = "bank"
    government = "government"
    hotel = "hotel"
    temple = "temple"
    railway_station = "railway_station"
    bus_stop = "bus_stop"
    bar = "bar"
    convenience_store = "convenience_store"
    report_point = "report_point"
    junction = "junction"


class Community(_Strict):
    """A community (ชุมชน) inside the zone, with its registered population."""

    name: str = Field(description="the community's name (Thai as registered)")
    population: Annotated[int, Field(gt=0, description="registered residents (persons, > 0)")]


class PlaceSpec(_Strict):
    """A named place; without a location it is generated on the street graph (``source: generated``)."""

    name: str = Field(description="the place's name as operators know it (Thai or English)")
    kind: PlaceKind = Field(description="what the place is (risk and patrol planning use it)")
    location: GeoPoint | None = Field(default=None, description="where it is; omit it to generate a position on "
                                                               "the zone's streets")
    source: Source = Field(default=Source.generated, description="where the position comes from (surveyed, osm, "
                                                                 "approximate; generated when there is no location)")

    @model_validator(mode="after")
    def _source_matches_location(self) -> PlaceSpec:
        if self.location is None and self.source != Source.generated:
            raise ValueError(f"place {self.name!r} has no location, so its source must be 'generated'")
        return self


class GraphSpec(_Strict):
    """Where the zone's street graph comes from.

    ``osm_file`` reads a local OSM XML (optionally .gz/.bz2) or PBF file offline; ``place`` and ``bbox``
    download from OpenStreetMap (needs the internet or a mirror set in ``SSZ_OSM_OVERPASS_URL``);
    ``generated`` builds a deterministic city-like street network around the zone centre, for cities
    whose OSM extract is not available offline.
    """

    kind: Literal["osm_file", "place", "bbox", "generated"] = Field(
        description="osm_file: a local OSM extract (offline); place or bbox: download from OpenStreetMap; "
                    "generated: a deterministic city-like grid around the zone centre")
    path: str | None = Field(default=None, description="osm_file: the OSM XML (.osm, .osm.gz, .osm.bz2) or PBF file; "
                                                       "relative to the YAML's folder; ${SSZ_SHARED_DATA} expands")
    place: str | None = Field(default=None, description='place: a geocodable name, e.g. "Hat Yai, Songkhla, '
                                                        'Thailand"')
    bbox: tuple[float, float, float, float] | None = Field(
        default=None, description="bbox: (left, bottom, right, top) in WGS84 degrees, osmnx 2 order"
    )
    network_type: Literal["drive", "drive_service", "walk", "bike", "all"] = Field(
        default="all", description="which streets to keep (osmnx network type); all keeps footways for patrols")
    extent_m: Annotated[float, Field(gt=100, le=50_000, description="generated: side of the square town (m, "
                                                                   "100-50,000)")] = 3000.0
    block_m: Annotated[float, Field(gt=20, le=1000, description="generated: street block size (m, 20-1,000)")] = 110.0
    seed: int = Field(default=0, description="generated: random seed of the town (same seed, same streets)")

    @model_validator(mode="after")
    def _needs_matching_field(self) -> GraphSpec:
        need = {"osm_file": "path", "place": "place", "bbox": "bbox"}.get(self.kind)
        if need and getattr(self, need) is None:
            raise ValueError(f"street_graph kind {self.kind!r} needs the field {need!r}")
        if self.bbox is not None:
            left, bottom, right, top = self.bbox
            if not (left < right and bottom < top):
                raise ValueError("bbox must be (left, bottom, right, top) with left<right and bottom<top")
        return self

    def resolved_path(self, config_dir: Path) -> Path:
        """The OSM file path with ``${VAR}`` expanded and made absolute against the config's folder."""
        if self.path is None:
            raise ConfigError("street_graph has no path")
        return resolve_path(self.path, config_dir)


MEGAPIXELS_RANGE = (0.01, 1000.0)
"""Accepted bounds of a camera's largest picture (MP): under 0.01 MP (10,000 px) no camera sends a usable picture;
over 1,000 MP one decoded frame alone would take 3 GB (the largest sensors sold are about 250 MP)."""
MEGAPIXELS_SPAN = f"{MEGAPIXELS_RANGE[0]:g}-{MEGAPIXELS_RANGE[1]:g}"
""":data:`MEGAPIXELS_RANGE` as help texts give it (``0.01-1000``)."""


def _megapixels(v: float) -> float:
    lo, hi = MEGAPIXELS_RANGE
    if not lo <= v <= hi:  # NaN too
        raise ValueError(f"max megapixels must be between {lo:g} and {hi:g} (the largest picture a camera may send, "
                         "width x height / 1,000,000: 200 for 200 MP cameras; leave it out for the default: the "
                         f"city's cameras.max_megapixels, else 130 MP), not {v:g}")
    return v


MegaPixels = Annotated[float, AfterValidator(_megapixels)]
"""The largest picture a camera may send, in megapixels (:data:`MEGAPIXELS_RANGE`): the bound of the decoder's
allocation."""


class MobileCamera(_Strict):
    """A camera whose position comes from a GPS feed (CCTV van, drone, body-worn camera)."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$",
                             description="camera id (lower case letters, digits, - and _), e.g. hatyai-van-01")]
    kind: Literal["van", "drone", "bodycam"] = Field(description="a CCTV van, a drone or a body-worn camera")
    face_detection: bool = Field(default=True, description="run the face model on its stream")


class CameraFleet(_Strict):
    """The city's cameras: how many, what they look for and how fast they are sampled."""

    count: Annotated[int, Field(ge=0, le=100_000, description="fixed CCTV cameras (faces), city-wide (0-100,000)")]
    plate_count: Annotated[int, Field(ge=0, le=100_000, description="licence-plate cameras (0-100,000)")] = 0
    mobile: list[MobileCamera] = Field(default=[], description="mobile cameras whose position comes from GPS")
    fps: Annotated[float, Field(gt=0, le=120, description="frame rate the cameras stream (frames/s, 0-120)")] = 15.0
    sample_fps: Annotated[float, Field(gt=0, le=120, description="CCTV frames per second sent to the face model "
                                       "(frames/s, at most fps)")] = 2.0
    plate_sample_fps: Annotated[float, Field(gt=0, le=120, description="plate cameras' frames per second sent to "
                                             "the plate model (frames/s, at most fps): a passing plate is readable "
                                             "for about a second, so they are sampled faster")] = 5.0
    plate_min_reads: Annotated[int, Field(ge=1, le=20, description=(
        "plate cameras: reads of one passing plate within the hotlist's fuzzy distance of one entry that make "
        "an alert (1-20; a plate is readable for about a second; faces need the confirmer's 3 matching frames)"))] = 2
    fov_deg: tuple[float, float] = Field(default=(60.0, 100.0), description=(
        "(min, max) horizontal field of view of generated CCTV cameras (degrees, 0 < min <= max <= 360)"))
    range_m: tuple[float, float] = Field(default=(20.0, 45.0), description=(
        "(min, max) useful range of generated CCTV cameras (m, 0 < min <= max)"))
    owner_share: dict[Literal["police", "government", "private"], float] = Field(
        default={"police": 0.6, "government": 0.25, "private": 0.15},
        description="share of the CCTV cameras each owner runs (fractions summing to 1)")
    in_zone_share: Annotated[float, Field(ge=0, le=1, description="share of the CCTV cameras inside the Safety "
                                                                  "Zone (0-1)")] = 0.35
    seed: int = Field(default=0, description="random seed of the generated camera positions (same seed, same "
                                             "registry)")
    max_megapixels: MegaPixels | None = Field(default=None, description=(
        f"largest picture a camera may send (megapixels, width x height / 1e6, {MEGAPIXELS_SPAN}): a bigger one, or a "
        "damaged header claiming one, is refused before the decoder allocates it; left out: 130 MP (a 61 MP camera "
        "passes; raise it for 200 MP cameras); `ssz run --max-megapixels` overrides it for one run"))

    @model_validator(mode="after")
    def _check(self) -> CameraFleet:
        for name in ("sample_fps", "plate_sample_fps"):
            if getattr(self, name) > self.fps:
                raise ValueError(f"{name} ({getattr(self, name)}) cannot exceed fps ({self.fps})")
        for name, (lo, hi) in (("fov_deg", self.fov_deg), ("range_m", self.range_m)):
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be (min, max) with 0 < min <= max")
        if self.fov_deg[1] > 360:
            raise ValueError("fov_deg cannot exceed 360")
        total = sum(self.owner_share.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"owner_share must sum to 1, got {total:g}")
        return self


class ZoneConfig(_Strict):
    """The pilot Safety Zone: a small area (about 0.5 km²) around the station."""

    name: str = Field(description="the zone's name in English")
    name_th: str = Field(description="the zone's name in Thai")
    centre: GeoPoint = Field(description="centre of the zone (the zone is a disc of area_km2 around it)")
    area_km2: Annotated[float, Field(gt=0, le=100, description="area of the zone (km², 0-100; pilots are 0.5-0.7)")]
    communities: list[Community] = Field(default=[], description="communities (ชุมชน) inside the zone")
    residents: int | None = Field(default=None, ge=0, description="residents of the zone (persons; at least the "
                                                                  "communities' sum); None when unknown")

    @model_validator(mode="after")
    def _residents(self) -> ZoneConfig:
        counted = sum(c.population for c in self.communities)
        if self.residents is not None and self.communities and counted > self.residents:
            raise ValueError(f"communities hold {counted} people, more than residents={self.residents}")
        return self


_PROCEDURES = {
    "sos": "SOS: call the pole / caller back, look at the nearest cameras, send the nearest unit. "
           "SOS: ติดต่อกลับ ดูกล้องใกล้เคียง ส่งสายตรวจที่ใกล้ที่สุด",
    "face": "Face match: compare the crop with the warrant photo; if it is the person, send a unit and inform the "
            "investigator. ใบหน้าตรงหมายจับ: เทียบภาพกับรูปในหมายจับ ถ้าใช่ให้ส่งสายตรวจและแจ้งพนักงานสอบสวน",
    "plate": "Hot-listed plate: check the plate and the vehicle; send a unit to the next camera on its route. "
             "ทะเบียนต้องสงสัย: ตรวจป้ายและรถ ส่งสายตรวจไปยังกล้องถัดไปบนเส้นทาง",
    "citizen-report": "Citizen report: read it, call the reporter back if needed, send a unit or close it. "
                      "แจ้งเหตุจากประชาชน: อ่าน ติดต่อผู้แจ้ง ส่งสายตรวจหรือปิดเรื่อง",
    "camera-offline": "Camera offline: check power and network; open a maintenance ticket. "
                      "กล้องขัดข้อง: ตรวจไฟและเครือข่าย แจ้งซ่อม",
}


class CcocConfig(_Strict):
    """The command room (CCOC) of the city: reason codes, procedure texts and patrol units of the console."""

    dismiss_reasons: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]] = Field(
        default=["wrong-person", "look-alike-plate", "test", "duplicate", "false-alarm", "nobody-there"],
        min_length=1, description="reason codes an operator picks from when dismissing an alert (lower case, -)")
    procedures: dict[str, str] = Field(default=_PROCEDURES, description="alert kind -> the procedure text the "
                                                                        "console shows with the alert")
    units: list[str] = Field(default=[], description="patrol unit ids alerts can be assigned to; empty = "
                                                     "<city>-unit-1 .. <city>-unit-<patrol_units>")
    qr_round_min: Annotated[int, Field(ge=5, le=1440, description="a QR box not scanned for this long (minutes) "
                                       "is flagged missed")] = 120
    max_clock_skew_s: Annotated[float, Field(ge=0, le=3600, description="field input dated more than this many "
                                             "seconds in the future is refused (the device clock is wrong)")] = 120.0


class CityConfig(_Strict):
    """Everything the platform knows about one city: station, zone, graph, cameras, places."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$",
                             description="city id, the YAML file's name (lower case letters, digits and _)")]
    name: str = Field(description="the city's name in English")
    name_th: str = Field(description="the city's name in Thai")
    province_th: str = Field(description="the province in Thai (one of the 77)")
    station_th: str = Field(description="the police station in Thai, e.g. สภ.หาดใหญ่")
    station_en: str = Field(description="the police station in English")
    station: GeoPoint = Field(description="where the police station is (patrols start and end there)")
    utm_epsg: Annotated[int, Field(ge=32601, le=32760, description="metric CRS of the city: its WGS84 UTM zone "
                                   "(EPSG 326xx north / 327xx south; 32647 for most of Thailand)")] = 32647
    pilot_station: bool = Field(default=True, description="a Smart Safety Zone 4.0 pilot station")
    zone: ZoneConfig = Field(description="the Safety Zone around the station")
    street_graph: GraphSpec = Field(description="where the street graph comes from")
    cameras: CameraFleet = Field(description="the city's cameras: counts, frame rates, what is generated")
    key_places: dict[PlaceKind, Annotated[int, Field(ge=0, le=1000)]] = Field(
        default={}, description="kind -> how many places of that kind to generate in the zone (0-1,000 each), "
                                "beyond the named places")
    places: list[PlaceSpec] = Field(default=[], description="named places (with or without a known position)")
    sos_poles: list[PlaceSpec] = Field(default=[], description="SOS poles (a press becomes an sos alert)")
    checkpoints: Annotated[int, Field(ge=0, le=10_000, description="QR red boxes on patrol rounds (0-10,000), "
                                                                   "generated on the zone's streets")] = 0
    patrol_units: Annotated[int, Field(ge=0, le=1000, description="patrol units on a shift (0-1,000)")] = 2
    ccoc: CcocConfig = Field(default_factory=CcocConfig, description="the command room's console: dismiss "
                                                                      "reasons, procedures, patrol units")
    notes: str = Field(default="", description="free text: sources of the numbers, caveats")

    @field_validator("utm_epsg")
    @classmethod
    def _utm(cls, v: int) -> int:
        if not (32601 <= v <= 32660 or 32701 <= v <= 32760):
            raise ValueError(f"{v} is not a WGS84 UTM zone (EPSG:326xx or 327xx)")
        return v

    @property
    def camera_count(self) -> int:
        """Fixed CCTV cameras plus plate cameras plus mobile cameras."""
        return self.cameras.count + self.cameras.plate_count + len(self.cameras.mobile)


_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")


def shared_data_dir() -> Path:
    """The read-only shared data folder (``SSZ_SHARED_DATA`` or ``../shared/data`` beside the repo)."""
    env = os.environ.get("SSZ_SHARED_DATA")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data").resolve()


def resolve_path(raw: str, base: Path) -> Path:
    """Expand ``${VAR}`` (``SSZ_SHARED_DATA`` has a default) and make the path absolute against ``base``."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "SSZ_SHARED_DATA":
            return str(shared_data_dir())
        if name not in os.environ:
            raise ConfigError(f"path {raw!r} uses ${{{name}}}, which is not set in the environment")
        return os.environ[name]

    p = Path(_VAR.sub(sub, raw)).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def explain_validation(err: ValidationError, options: Mapping[str, str] | None = None) -> str:
    """One line per pydantic error, naming the field and the reason (no pydantic boilerplate), so a CLI can
    say what is wrong with a config or an option in words an operator can act on. ``options`` maps a field
    to the command-line option that set it (``{"duration_s": "--duration"}``): the error names the option."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling against cluster/config.py)"
        if options and loc in options:
            parts.append(f"{options[loc]}: {msg}")
        else:
            parts.append(f"field '{loc}': {msg}" if loc else msg)
    return "; ".join(parts)


def load_city_file(path: str | os.PathLike[str]) -> CityConfig:
    """Load and validate one city YAML file; errors name the file, the field and the reason."""
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: file not found") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: field '(top level)': expected a mapping of city settings")
    try:
        cfg = CityConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{path}: {explain_validation(e)}") from e
    if cfg.id != path.stem:
        raise ConfigError(f"{path}: field 'id': {cfg.id!r} must match the file name {path.stem!r}")
    return cfg


def city_path(city: str) -> Path:
    """The YAML path of a city: a bundled city id (``hatyai``) or a path to a YAML file."""
    p = Path(city)
    if p.suffix in {".yaml", ".yml"}:
        return p
    bundled = CITIES_DIR / f"{city}.yaml"
    if not bundled.exists():
        raise ConfigError(f"unknown city {city!r}: bundled cities are {', '.join(list_cities())}, "
                          "or pass a path to a YAML file")
    return bundled


def load_city(city: str) -> CityConfig:
    """Load a bundled city by id or a city YAML by path."""
    return load_city_file(city_path(city))


def chosen_city(default: str) -> str:
    """The city a notebook works on: ``$SSZ_CITY`` when set (``ssz lab --city NAME`` sets it for the lab's
    kernels), else ``default`` (the notebook's own city).

    Returns
    -------
    str
        A bundled city id or a path to a city YAML, as :func:`load_city` takes it.

    Raises
    ------
    ConfigError
        when ``$SSZ_CITY`` names no bundled city (the message lists them).
    """
    city = os.environ.get(CITY_ENV, "").strip() or default
    try:
        city_path(city)
    except ConfigError as e:
        raise ConfigError(f"{CITY_ENV}={city}: {e}") from None
    return city


def list_cities() -> list[str]:
    """Ids of the bundled city configs."""
    return sorted(p.stem for p in CITIES_DIR.glob("*.yaml"))
