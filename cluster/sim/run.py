"""Running a simulated day: the lists enrolled through the API, the rendered cameras streamed through the
shards and the models, and the scenario's field data committed to the twin.

:func:`run` enrols the scenario's wanted persons and hot-listed plates (through the HTTP API, audited),
streams the scripts of :mod:`cluster.sim.scripts` with :func:`cluster.pipeline.run_cameras` until they have
played, withdraws the simulated entries again and returns a :class:`SimRun` for the evaluation.
:func:`commit_layers` adds the scenario's patrol pings, QR scans and SOS presses to the twin.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from cluster.pipeline import RunResult
from cluster.sim.city import SimCity
from cluster.sim.scenario import LOCAL_TZ
from cluster.sim.scripts import scripts
from twin.layers import validate_table
from twin.schemas import alert_id

if TYPE_CHECKING:
    import httpx


class SimRun(BaseModel):
    """What :func:`run` leaves for the evaluation: the rendered sightings, this run's alerts and numbers."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    epoch: float = Field(description="Unix time of the scenario day's local midnight (frame pts = epoch + t)")
    started: float = Field(description="wall-clock start of the streaming")
    sightings: pd.DataFrame
    windows: dict[str, list[tuple[float, float]]]
    result: RunResult
    enrolled: dict[str, list[str]]


def _epoch(day: object) -> float:
    return float(pd.Timestamp(day, tz=LOCAL_TZ).timestamp())


def api_client(url: str) -> httpx.Client:
    """An HTTP client of the ``ssz`` API as the user ``simulation`` (role supervisor: it enrols the scenario's
    lists), with a token issued for this client (audited; it replaces the previous simulation token)."""
    import httpx

    from cluster import serving

    token = serving.issue_token("simulation", "supervisor", actor="system:simulation")
    return httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {token}"})


def own_list(sim: SimCity) -> str:
    """The simulation's own watchlist and hotlist name, ``sim-<city>``: simulations never touch the operational
    lists (the API's ``?list=``; the shards match against it, see ``cluster.pipeline.run_cameras``)."""
    return f"sim-{sim.city.id}"


def enrol(sim: SimCity, client: httpx.Client) -> dict[str, list[str]]:
    """Put the scenario's wanted persons and hot-listed plates on the simulation's own lists (:func:`own_list`),
    through the HTTP API (audited like any supervisor change). Entries of earlier simulations that are not in
    this scenario are removed first, so that nobody is wanted by a scenario that does not say so."""

    lst = {"list": own_list(sim)}
    c = client
    agents = sim.scenario.agents
    wanted = agents[(agents["kind"] == "person") & agents["listed"]]
    hot = agents[(agents["kind"] == "vehicle") & agents["listed"]]
    keep_w, keep_h = set(wanted["subject_id"]), set(hot["subject_id"])

    withdraw(c, keep_w, keep_h, list_name=own_list(sim))
    present_w = {r["warrant_no"] for r in _check(c.get("/v1/watchlist", params=lst)).json()}
    present_h = {r["id"] for r in _check(c.get("/v1/hotlist", params={"include_expired": True, **lst})).json()}
    expires = str(dt.date.today() + dt.timedelta(days=365))
    for r in wanted.itertuples():
        if r.subject_id in present_w:
            continue
        photos = [{"name": f, "data_b64": base64.b64encode((sim.faces_dir / f).read_bytes()).decode()}
                  for f in r.enrol_photos]
        _check(c.post("/v1/watchlist", params=lst, json={
            "warrant_no": r.subject_id, "name": f"simulated person {r.identity}", "court": "simulation",
            "offence": "simulated warrant", "expires": expires, "photos": photos}))
    for r in hot.itertuples():
        if r.subject_id in present_h:
            continue
        _check(c.post("/v1/hotlist", params=lst, json={"plate": str(r.plate).replace("\n", " "),
                                          "reason": "simulated hot list", "entry_id": r.subject_id}))
    return {"watchlist": sorted(keep_w), "hotlist": sorted(keep_h)}


def _check(r: Any, ok: tuple[int, ...] = (200, 201)) -> Any:
    """``r`` (an httpx response) if its status is in ``ok``, else a RuntimeError that says which call failed."""
    if r.status_code not in ok:
        raise RuntimeError(f"{r.request.method} {r.request.url.path} answered {r.status_code}: {r.text[:300]}")
    return r


def withdraw(client: httpx.Client, keep_watchlist: set[str] | frozenset[str] = frozenset(),
             keep_hotlist: set[str] | frozenset[str] = frozenset(), list_name: str | None = None) -> list[str]:
    """Remove simulated entries (``SIM-`` ids) from the named list ``list_name`` (a simulation's own), or from
    the operational lists when None (entries left there by versions that enrolled simulations operationally),
    except those kept; audited as "simulation reset". Returns the ids removed."""
    c = client
    lst = {"list": list_name} if list_name else {}
    removed: list[str] = []
    for rec in _check(c.get("/v1/watchlist", params=lst)).json():
        if rec["warrant_no"].startswith("SIM-") and rec["warrant_no"] not in keep_watchlist:
            _check(c.delete(f"/v1/watchlist/{rec['warrant_no']}", params={"reason": "simulation reset", **lst}))
            removed.append(rec["warrant_no"])
    for rec in _check(c.get("/v1/hotlist", params={"include_expired": True, **lst})).json():
        if rec["id"].startswith("SIM-") and rec["id"] not in keep_hotlist:
            _check(c.delete(f"/v1/hotlist/{rec['id']}", params={"reason": "simulation reset", **lst}))
            removed.append(rec["id"])
    return removed


def run(sim: SimCity, *, api_url: str | None = None, limit_s: float = 900.0, lossless: bool = True,
        report: object | None = None, keep_lists: bool = False,
        scripted: tuple[dict[str, object], pd.DataFrame] | None = None) -> SimRun:
    """Enrol the scenario's lists, stream the rendered cameras' scripts through the shards and Serve models until
    every script has played (or ``limit_s``), and return what the evaluation needs.

    ``lossless``: a camera whose queue is full waits for the models instead of dropping its oldest frame, so
    the numbers measure the models and the pipeline, not how many cores this machine has (the run then takes
    longer than the footage); ``lossless=False`` runs live, dropping what the machine cannot carry.

    The scenario's lists are the simulation's own (:func:`own_list`); the operational watchlist and hotlist
    are never read or changed. Its entries are withdrawn when the run ends (audited), unless ``keep_lists``.

    ``scripted`` is what :func:`scripts` returned for ``sim``, when the caller already made it.

    Needs a Ray connection and the object store; deploys the ``ssz`` Serve application when it is not running
    (``api_url`` is where an already running one listens). Raises :class:`~cluster.sharding.ShardingError`
    before enrolling anything when another run's shards are running (its lists are ``sim-<city>`` too).
    """
    from cluster import serving
    from cluster.pipeline import run_cameras
    from cluster.sharding import ensure_no_shards

    ensure_no_shards()  # a second eval/demo must not re-enrol, then withdraw, the running one's list
    api_url = api_url or serving.ensure_up()
    with api_client(api_url) as client:
        enrolled = enrol(sim, client)
    specs, sightings = scripted or scripts(sim)
    epoch = _epoch(sim.scenario.config.day)
    for spec in specs.values():
        spec.sim_script.epoch = epoch  # type: ignore[attr-defined]
    started = time.time()
    try:
        res = run_cameras(sim.city, sim.registry, specs, detect="faces", duration_s=limit_s, until_done=True,
                          sample_fps=sim.config.sample_fps, report=report,  # type: ignore[arg-type]
                          shard_options={"block_when_full": lossless}, list_name=own_list(sim),
                          message=f"ssz simulation {sim.city.id} seed {sim.config.scenario.seed}")
    finally:
        if not keep_lists:
            with api_client(api_url) as client:
                withdraw(client, list_name=own_list(sim))
    return SimRun(epoch=epoch, started=started, sightings=sightings, result=res, enrolled=enrolled,
                  windows={c: list(s.sim_script.windows) for c, s in specs.items()})  # type: ignore[attr-defined]


def twin_layers(sim: SimCity) -> dict[str, object]:
    """The scenario's patrol pings, trips, QR scans and SOS reports (plus an ``sos`` alert per press) as
    validated twin layer tables, with scenario seconds turned into UTC timestamps of the scenario day."""
    scen = sim.scenario
    out: dict[str, object] = {}
    for name, df in scen.layers.items():
        if not len(df):
            continue
        df = df.copy()
        for col in ("ts", "status_ts"):
            if col in df:
                df[col] = scen.utc(df[col].to_numpy(float)).floor("ms")
        if name == "patrol_trips":
            df["start_ts"] = scen.utc(df.pop("start_s").to_numpy(float)).floor("ms")
            df["end_ts"] = scen.utc(df.pop("end_s").to_numpy(float)).floor("ms")
            df["path_ts"] = [list(scen.utc(np.asarray(p, float)).floor("ms")) for p in df.pop("path_s")]
        out[name] = df
    if "sos_reports" in out:
        sos = out["sos_reports"]
        out["sos_alerts"] = pd.DataFrame([{
            "alert_id": alert_id(str(r.pole_id), "sos", str(r.pole_id), str(r.report_id)), "camera_id": str(r.pole_id),
            "ts": r.ts, "kind": "sos", "subject_id": str(r.pole_id), "status": "confirmed",
            "status_by": r.status_by, "status_ts": r.status_ts, "lon": r.lon, "lat": r.lat, "city": sim.city.id,
            "track_id": str(r.report_id)} for r in sos.itertuples()])  # type: ignore[attr-defined]
    tables: dict[str, object] = {}
    for name, df in out.items():
        layer = "alerts" if name == "sos_alerts" else name
        res = validate_table(layer, pa.Table.from_pandas(df, preserve_index=False), sim.city.id)  # type: ignore[arg-type]
        if res.rejected:
            raise ValueError(f"simulated {layer} rows do not fit the twin schema: {res.rejected[:3]}")
        tables[name] = res.table
    return tables


def commit_layers(sim: SimCity, message: str, only: set[str] | None = None) -> str:
    """Add the scenario's layers (or those named in ``only``) to the city's latest twin snapshot (SOS alerts
    join the alerts layer).

    Returns the new snapshot's id; raises :class:`twin.snapshots.SnapshotConflict` when the twin kept changing.
    """
    from cluster import store
    from twin.snapshots import SnapshotStore

    new = {k: v for k, v in twin_layers(sim).items() if only is None or k in only}

    def add(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
        for name, t in new.items():
            if name == "sos_alerts":
                old = tables.get("alerts")
                keep = old.filter(pa.compute.invert(pa.compute.is_in(old["alert_id"], t["alert_id"]))) \
                    if old is not None else None
                tables["alerts"] = pa.concat_tables([keep, t]) if keep is not None else t  # type: ignore[list-item]
            else:
                tables[name] = t  # type: ignore[assignment]
        return tables

    return SnapshotStore(store.open_store(), sim.city.id).update(add, message=message, author="ssz simulation").id


