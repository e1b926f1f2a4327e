"""The command room's side of the API replica: one city's alert desk, field ingest and live stream.

:class:`DeskConfig` is what the API needs to know about the city it serves (built by ``cluster.ccoc`` from the
city config, the street graph and the registry): dismiss reason codes, procedure texts, patrol units, where
field inputs may lie, the map (streets, cameras, places, zone outline) and the file that holds the LINE
channel secret. :class:`Desk` is its runtime in an ingress replica:

- the city's **alert sink** actor holds all alert state (one place: the records in the versioned ``twin``
  bucket, reloaded when the actor restarts; its alerts layer goes into the twin snapshots) and the **field
  store** actor holds accepted field inputs; both are reached through ``services`` (an object from the
  ``cluster`` package with ``sink()`` and ``field()`` that return the actors, starting them when needed), and
  a handle whose actor died is fetched again;
- one long-poll loop per replica takes the sink's published items (new alerts, decisions), followed by the open
  alerts' counts by status after each batch, and fans them out to every server-sent-events subscriber of this
  replica (:meth:`Desk.subscribe`);
- Prometheus counters of this replica (:mod:`serve.metrics`).

(No ``from __future__ import annotations``: the route modules using it define FastAPI dependencies.)
"""

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from serve.errors import UnavailableError

log = logging.getLogger("ray.serve")

# Queue order of alert kinds: lower first (an SOS press tops the queue).
PRIORITY = {"sos": 0, "citizen-report": 1, "face": 2, "plate": 2, "intrusion": 3, "loitering": 3, "other": 4,
            "camera-offline": 5}


class MapData(BaseModel):
    """What the console draws, with no tile server: streets, cameras, places and the zone, in WGS84."""

    bbox: tuple[float, float, float, float] = Field(description="(west, south, east, north) of the street graph")
    streets: list[list[list[float]]] = Field(description="street polylines, each [[lon, lat], ...]")
    zone: list[list[float]] = Field(description="the Safety Zone outline [[lon, lat], ...]")
    cameras: list[dict[str, Any]] = Field(description="id, kind, lon, lat, in_zone of every fixed camera")
    places: list[dict[str, Any]] = Field(description="id, name, kind (sos, qr, ...), lon, lat of the places")


class DeskConfig(BaseModel):
    """One city's command room, as the API replica serves it."""

    model_config = ConfigDict(extra="forbid")

    city: str = Field(description="city id")
    name: str = Field(description="the city's name in English")
    name_th: str = Field(description="the city's name in Thai")
    station_th: str = Field(description="the police station in Thai")
    dismiss_reasons: list[str] = Field(min_length=1, description="reason codes of a dismissal")
    procedures: dict[str, str] = Field(default={}, description="alert kind -> procedure text")
    units: list[str] = Field(default=[], description="patrol units alerts can be assigned to")
    mobile_cameras: list[str] = Field(default=[], description="mobile cameras whose position comes from GPS")
    area_wkt: str = Field(description="WKT polygon (WGS84) that field inputs must lie in: the city's streets")
    area_name: str = Field(description="the area's name in messages")
    max_clock_skew_s: float = Field(default=120.0, ge=0, description="field input dated later than now + this is "
                                                                     "refused (s)")
    max_age_s: float = Field(default=7 * 86400.0, gt=0, description="field input dated earlier than now - this is "
                                                                    "refused (s): a device clock that was reset")
    qr_round_min: int = Field(default=120, ge=1, description="a QR box not scanned for this long is missed (min)")
    call_timeout_s: float = Field(default=45.0, gt=0, description="a call to the city's sink or field store that "
                                                                  "has not answered by then is withdrawn: 503 (s)")
    line_secret_file: str | None = Field(default=None, description="file holding the LINE channel secret "
                                                                   "(None: the LINE webhook answers 503)")
    activity_logs: dict[str, str] = Field(default={}, description="name -> local audit log (JSON lines) shown in "
                                                                "the supervisor's activity trail beside the alerts "
                                                                "(watchlist, hotlist, access)")
    map: MapData = Field(description="the console's map")
    surveys: list[dict[str, Any]] = Field(default=[], description="People Poll rows (community, month, "
                                                                  "respondents, fear_of_crime_pct, "
                                                                  "confidence_in_police_pct) for the KPI page")


class Desk:
    """The runtime of one city's desk in an API replica (see the module docstring)."""

    def __init__(self, config: DeskConfig, services: Any) -> None:
        """Keep the config and the services; nothing is contacted until the first request."""
        import shapely

        from serve.metrics import DeskMetrics
        from twin.fieldinput import Area

        self.cfg = config
        self.services = services
        self.area = Area(shapely.from_wkt(config.area_wkt), config.area_name)
        self.places = {p["id"]: p for p in config.map.places}
        self.metrics = DeskMetrics(config.city)
        self._sink: Any = None
        self._field: Any = None
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._pump: asyncio.Task[None] | None = None
        self._queue_name = f"api-{uuid.uuid4().hex[:8]}"
        self._subscribed = False

    # ---------------------------------------------------------------- actors
    async def call(self, which: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` of the city's sink (``which="sink"``) or field store (``"field"``); a handle whose actor
        died is fetched again (the pipeline restarts the sink between runs) and the call made once more."""
        import ray

        what = "alert sink" if which == "sink" else "field store"
        for attempt in (0, 1):
            handle = self._handle(which, fresh=attempt > 0)
            ref = getattr(handle, method).remote(*args, **kwargs)
            try:
                return await asyncio.wait_for(ref, self.cfg.call_timeout_s)
            except TimeoutError:
                # an actor that is starting (it waits for an object store that is down) runs nothing meanwhile:
                # the call is still queued, and a cancelled queued call never runs
                ray.cancel(ref)
                raise UnavailableError(f"the city's {what} did not answer within {self.cfg.call_timeout_s:g} s (it "
                                       "is starting or waiting for the object store: `ssz store status`); the "
                                       "request was withdrawn, send it again in a minute") from None
            except ray.exceptions.RayTaskError:
                raise  # the method raised: the actor is alive
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
                if attempt:  # it could not be started again either (e.g. the object store is down): nothing ran
                    raise UnavailableError(f"the city's {what} is not running and could not be started ({e!r:.200}); "
                                           "nothing was done: check `ssz store status`, then send the request "
                                           "again") from None
                if which == "sink":
                    self._subscribed = False
                log.warning("the %s actor of %s is gone (%s): fetching it again", which, self.cfg.city, e)
        raise AssertionError("unreachable")

    def _handle(self, which: str, fresh: bool) -> Any:
        attr = f"_{which}"
        if fresh or getattr(self, attr) is None:
            setattr(self, attr, getattr(self.services, which)())
        return getattr(self, attr)

    async def camera_stats(self) -> dict[str, dict[str, Any]]:
        """Camera id -> the running shards' numbers for it (empty when no camera is streamed or the services
        cannot say)."""
        get = getattr(self.services, "camera_stats", None)
        if get is None:
            return {}
        try:
            return {c["camera_id"]: c for c in await asyncio.to_thread(get)}
        except Exception as e:  # shards restarting: the console shows what the alerts say
            log.warning("camera stats of %s: %s", self.cfg.city, e)
            return {}

    # ---------------------------------------------------------------- live stream
    async def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives every alert and decision published from now on: when this returns, this
        replica's queue at the sink exists, so nothing published later is missed (starts the pump if needed)."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        if not self._subscribed:
            await self.call("sink", "subscribe", self._queue_name)
            self._subscribed = True
        self._subscribers.add(q)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop sending to ``q``."""
        self._subscribers.discard(q)

    async def _run_pump(self) -> None:
        while self._subscribers:
            try:
                if not self._subscribed:
                    await self.call("sink", "subscribe", self._queue_name)
                    self._subscribed = True
                items = await self.call("sink", "poll", self._queue_name, 200, 1.0)
            except Exception as e:  # the sink restarts: subscribe again
                log.warning("alert stream of %s: %s; retrying", self.cfg.city, e)
                self._subscribed = False
                await asyncio.sleep(0.5)
                continue
            for item in items:
                self.metrics.observe_item(item)
                self._fan_out(item)
            if items:
                # then the open alerts by status after this batch: every console's badges show the sink's numbers
                # (a page holds at most the 2,000 most urgent alerts); one call per batch and replica, however
                # many consoles listen. After the items: the call waits for the sink's lock, which a submit holds
                # while it writes to the store, and an SOS must not wait for a count.
                try:
                    self._fan_out({"event": "counts", **await self.call("sink", "open_counts")})
                except Exception as e:  # the next batch sends the counts
                    log.warning("open alert counts of %s: %s", self.cfg.city, e)
        self._pump = None

    def _fan_out(self, item: dict[str, Any]) -> None:
        for q in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(item)

    # ---------------------------------------------------------------- LINE
    def line_secret(self) -> bytes | None:
        """The LINE channel secret (UTF-8 bytes, as LINE signs with it), None when not configured."""
        if not self.cfg.line_secret_file:
            return None
        p = Path(self.cfg.line_secret_file)
        try:
            text = p.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text.encode() or None


def priority(kind: str) -> int:
    """Queue order of an alert kind (0 first)."""
    return PRIORITY.get(kind, 4)

