"""The simulated day's field inputs sent through the field-ingest API, as real devices would send them.

:func:`feed` posts the scenario's patrol GPS (``/v1/field/gps``, OsmAnd/Traccar fields), QR red-box scans
(``/v1/field/qr``) and SOS pole presses (``/v1/field/sos``) to the API with a ``device`` token. The API refuses
times in the future (device clock skew), and the scenario day may be today or later, so the day is replayed
*as of now*: every time is shifted by the same amount so that the day's last input is ``end_lag_s`` seconds
ago (the order and spacing of the inputs are kept). Each request carries an idempotency key made of the city,
the scenario day and the batch, so feeding the same day twice stores it once.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, Field

from cluster.sim.run import twin_layers

if TYPE_CHECKING:
    import httpx

    from cluster.sim.city import SimCity


class FeedResult(BaseModel):
    """What :func:`feed` sent and what the API accepted."""

    shift_s: float = Field(description="seconds added to every scenario time (the day replayed as of now)")
    gps_accepted: int = Field(default=0, description="GPS positions accepted")
    gps_refused: int = Field(default=0, description="GPS positions refused by the field-input reader")
    qr_accepted: int = Field(default=0, description="QR scans accepted")
    sos_alerts: list[str] = Field(default_factory=list, description="alert ids of the SOS presses")
    requests: int = Field(default=0, description="HTTP requests sent")
    seconds: float = Field(default=0.0, description="wall time of the feed (s)")


def _check(r: Any) -> Any:
    if r.status_code not in (200, 201):
        raise RuntimeError(f"{r.request.method} {r.request.url.path} answered {r.status_code}: {r.text[:300]}")
    return r.json()


def feed(sim: SimCity, client: httpx.Client, *, batch: int = 1000, end_lag_s: float = 60.0,
         now: dt.datetime | None = None) -> FeedResult:
    """Post the scenario's GPS pings, QR scans and SOS presses through the API (see the module docstring).

    Parameters
    ----------
    sim
        The simulated day (its scenario's field layers).
    client
        An HTTP client of the API whose token has the ``device`` role.
    batch
        GPS positions (and QR scans) per request.
    end_lag_s
        How long before ``now`` the day's last input lands (s).
    now
        The replay's end (default: the current time).

    Raises
    ------
    RuntimeError
        When the API refuses a request (the message names it and quotes the answer).
    """
    t0 = time.monotonic()
    tables = twin_layers(sim)
    frames = {k: v.to_pandas() for k, v in tables.items() if k in ("patrol_pings", "checkpoint_scans",
                                                                      "sos_reports")}
    last = max((f["ts"].max() for f in frames.values() if len(f)), default=None)
    end = pd.Timestamp(now or dt.datetime.now(dt.UTC)) - pd.Timedelta(seconds=end_lag_s)
    shift = (end - last) if last is not None else pd.Timedelta(0)
    out = FeedResult(shift_s=round(shift.total_seconds(), 1))
    day = sim.scenario.config.day
    key = f"demo-{sim.city.id}-{day}-{end.value}"  # a replay as of another time is another batch, not a retry

    pings = frames.get("patrol_pings")
    if pings is not None and len(pings):
        pings = pings.sort_values("ts")
        for i in range(0, len(pings), batch):
            part = pings.iloc[i:i + batch]
            locs = [{"id": r.unit_id, "lon": float(r.lon), "lat": float(r.lat),
                     "timestamp": (r.ts + shift).timestamp(),
                     "speed": None if pd.isna(r.speed_mps) else float(r.speed_mps),
                     "accuracy": None if pd.isna(r.accuracy_m) else float(r.accuracy_m)}
                    for r in part.itertuples()]
            res = _check(client.post("/v1/field/gps", json={"locations": locs},
                                     headers={"Idempotency-Key": f"{key}-gps-{i}"}))
            out.gps_accepted += res["accepted"]
            out.gps_refused += res["refused"]
            out.requests += 1
    scans = frames.get("checkpoint_scans")
    if scans is not None and len(scans):
        scans = scans.sort_values("ts")
        for i in range(0, len(scans), batch):
            part = scans.iloc[i:i + batch]
            rows = [{"unit_id": r.unit_id, "checkpoint_id": r.checkpoint_id, "officer_id": r.officer_id,
                     "ts": (r.ts + shift).isoformat(), "lon": float(r.lon), "lat": float(r.lat)}
                    for r in part.itertuples()]
            res = _check(client.post("/v1/field/qr", json={"scans": rows},
                                     headers={"Idempotency-Key": f"{key}-qr-{i}"}))
            out.qr_accepted += res["accepted"]
            out.requests += 1
    sos = frames.get("sos_reports")
    if sos is not None and len(sos):
        for r in sos.sort_values("ts").itertuples():
            res = _check(client.post("/v1/field/sos", json={
                "pole_id": r.pole_id, "ts": (r.ts + shift).isoformat(), "text": r.text, "category": r.category},
                headers={"Idempotency-Key": f"{key}-sos-{r.report_id}"}))
            out.sos_alerts.append(res["alert_id"])
            out.requests += 1
    out.seconds = round(time.monotonic() - t0, 2)
    return out
