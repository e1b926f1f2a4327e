"""``ssz eval``: run a scenario and compare its alerts with the ground truth.

Matching rules (per rendered camera):

* an alert is **true** when a played pass of the alert's subject (warrant or hotlist id) at that camera
  covers the start of the alert's track (the alert carries its track's first stream time,
  ``track_start_pts``), give or take ``slack_s``; otherwise it is **false** (a wrong identity, or a person
  or vehicle not on any list);
* a played pass of a listed subject is **detected** when a true alert matched it. Passes whose subject was
  alerted at that camera within the confirmer's cooldown before them are left out of recall (the product
  suppresses the repeat on purpose);
* **recall** is over *recognisable* passes (the face at least ``min_face_px`` high, lit and turned to the
  camera; the plate at least ``min_plate_px`` wide), ``recall_all`` over every listed pass;
* a pass of an unlisted agent during which a false alert was raised at its camera counts as
  ``unlisted_alerted`` (the privacy failure the programme must avoid);
* false alerts per camera-hour use the simulated footage actually played (the scripts' windows).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from cluster.sim.city import SimCity
from cluster.sim.result import EvalResult, KindMetrics
from cluster.sim.run import SimRun
from cluster.sim.scripts import watched
from twin.kinds import AlertKind, camera_alert_kind


def _alerts_frame(run: SimRun, cameras: list[str]) -> pd.DataFrame:
    rows = []
    for a in run.result.alerts:
        if a["kind"] not in (AlertKind.face, AlertKind.plate) or a["camera_id"] not in cameras:
            continue
        written = a["written_ts"]  # run_cameras keeps only the alerts written during the run
        start = a.get("track_start_pts")
        pts = float(start) - run.epoch if start is not None else np.nan
        lat = (pd.Timestamp(written).timestamp() - pd.Timestamp(a["ts"]).timestamp()) * 1000.0
        rows.append({"alert_id": a["alert_id"], "camera_id": a["camera_id"], "kind": a["kind"],
                     "subject_id": a["subject_id"], "pts": pts, "score": a.get("score"), "latency_ms": lat})
    cols = ["alert_id", "camera_id", "kind", "subject_id", "pts", "score", "latency_ms"]
    return pd.DataFrame(rows, columns=cols)


def match(sightings: pd.DataFrame, alerts: pd.DataFrame, slack_s: float = 2.0,
          cooldown_s: float = 300.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mark alerts true/false and played sightings detected (see the module docstring); returns copies."""
    s = sightings.copy()
    al = alerts.copy()
    al["true"] = False
    al["sighting_id"] = None
    s["detected"] = False
    s["alert_delay_s"] = np.nan
    s["cooldown"] = False
    s["unlisted_alerted"] = False
    rend = s[s["played"]] if "played" in s else s
    for i, a in al.iterrows():
        cand = rend[(rend["camera_id"] == a["camera_id"]) & (rend["subject_id"] == a["subject_id"])
                    & (rend["t_in"] - slack_s <= a["pts"]) & (a["pts"] <= rend["t_out"] + slack_s)]
        if len(cand):
            best = cand.iloc[int(np.argmin(np.abs(cand["t_in"].to_numpy() - a["pts"])))]
            al.at[i, "true"] = True
            al.at[i, "sighting_id"] = best["sighting_id"]
            j = s.index[s["sighting_id"] == best["sighting_id"]][0]
            s.at[j, "detected"] = True
            delay = max(0.0, float(a["pts"]) - float(best["t_in"]))
            if np.isnan(s.at[j, "alert_delay_s"]) or delay < s.at[j, "alert_delay_s"]:
                s.at[j, "alert_delay_s"] = delay
    true = al[al["true"]]
    false = al[~al["true"]]
    for j, r in s.iterrows():
        if r["listed"] and not r["detected"]:
            prev = true[(true["camera_id"] == r["camera_id"]) & (true["subject_id"] == r["subject_id"])
                        & (true["pts"] < r["t_in"]) & (true["pts"] >= r["t_in"] - cooldown_s)]
            s.at[j, "cooldown"] = bool(len(prev))
        if not r["listed"]:
            hit = false[(false["camera_id"] == r["camera_id"]) & (false["pts"] >= r["t_in"] - slack_s)
                         & (false["pts"] <= r["t_out"] + slack_s)]
            s.at[j, "unlisted_alerted"] = bool(len(hit))
    return s, al


def kind_metrics(kind: str, sightings: pd.DataFrame, alerts: pd.DataFrame, camera_hours: float) -> KindMetrics:
    """Recall, precision and false alerts per camera-hour of one alert kind (``face`` or ``plate``)."""
    watching = sightings["camera_kind"].map(camera_alert_kind) == kind
    s = sightings[watching & sightings["played"]]
    listed = s[s["listed"] & ~s["cooldown"]]
    rec = listed[listed["recognisable"]]
    a = alerts[alerts["kind"] == kind]
    true, false = int(a["true"].sum()), int((~a["true"]).sum())
    unlisted = s[~s["listed"] & (s["agent_kind"] != "crowd")] if kind == "face" else s[~s["listed"]]

    def ratio(x: int, n: int) -> float | None:
        return round(x / n, 4) if n else None

    return KindMetrics(
        kind=kind, listed_sightings=len(listed), recognisable=len(rec), detected=int(rec["detected"].sum()),
        detected_any=int(listed["detected"].sum()), recall=ratio(int(rec["detected"].sum()), len(rec)),
        recall_all=ratio(int(listed["detected"].sum()), len(listed)), alerts=len(a), true_alerts=true,
        false_alerts=false, precision=ratio(true, len(a)), unlisted_sightings=len(unlisted),
        unlisted_alerted=int(s.loc[~s["listed"], "unlisted_alerted"].sum()), camera_hours=round(camera_hours, 4),
        false_per_camera_hour=round(false / camera_hours, 3) if camera_hours > 0 else None)


def evaluate(sim: SimCity, run: SimRun, wall_s: float | None = None) -> EvalResult:
    """The :class:`EvalResult` of a finished :func:`cluster.sim.run.run`."""
    alerts = _alerts_frame(run, sim.rendered_cameras)
    sightings, alerts = match(run.sightings[watched(run.sightings)].reset_index(drop=True), alerts)
    reg_cams = sim.registry.cameras_frame()
    kinds = dict(zip(reg_cams["id"], reg_cams["kind"], strict=True))
    hours = {AlertKind.face: 0.0, AlertKind.plate: 0.0}
    for cam, wins in run.windows.items():
        hours[camera_alert_kind(kinds[cam])] += sum(b - a for a, b in wins) / 3600.0
    stats = {c.camera_id: c for st in run.result.stats for c in st.cameras}
    cam_rows = []
    for cam in sim.rendered_cameras:
        c = stats.get(cam)
        a = alerts[alerts["camera_id"] == cam]
        decoded = c.decoded if c else 0
        passed = round(decoded * (c.gate_pass_ratio if c else 0.0))
        cam_rows.append({"camera_id": cam, "camera_kind": kinds[cam], "decoded": decoded,
                         "gate_skipped": decoded - passed, "processed": c.processed if c else 0,
                         "dropped": c.dropped if c else 0, "alerts": len(a), "false_alerts": int((~a["true"]).sum()),
                         "stream_s": round(sum(b - x for x, b in run.windows.get(cam, [])), 1)})
    cameras = pd.DataFrame(cam_rows)
    lat = alerts["latency_ms"].dropna().to_numpy(float)
    scen = sim.scenario
    ag = scen.agents
    person, vehicle, listed = ag["kind"] == "person", ag["kind"] == "vehicle", ag["listed"].astype(bool)
    info: dict[str, Any] = {
        "city": sim.city.id, "day": str(scen.config.day), "seed": scen.config.seed,
        "cameras in the city": int((reg_cams["mount"] == "fixed").sum()),
        "cameras rendered": ", ".join(sim.rendered_cameras),
        "persons (wanted / not)": f"{int(person.sum())} ({int((person & listed).sum())} / "
                                  f"{int((person & ~listed).sum())})",
        "vehicles (hot-listed)": f"{int(vehicle.sum())} ({int((vehicle & listed).sum())})",
        "trips": len(scen.trips),
        "sightings in the whole city": len(scen.sightings),
        "sightings at rendered cameras": len(sightings),
        "sightings played whole": int(sightings["played"].sum()) if len(sightings) else 0,
        "simulated footage (camera-hours)": round(sum(hours.values()), 3),
        "patrol pings / QR scans / SOS": " / ".join(str(len(scen.layers.get(k, []))) for k in
                                                    ("patrol_pings", "checkpoint_scans", "sos_reports")),
        "face sample rate (fps)": sim.config.sample_fps,
        "plate sample rate (fps)": sim.city.cameras.plate_sample_fps,
    }
    cols = ["decoded", "gate_skipped", "processed", "dropped"]
    tot = cameras[cols].sum() if len(cameras) else pd.Series(0, index=cols)
    return EvalResult(
        city=sim.city.id, seed=scen.config.seed, scenario=info,
        metrics=[kind_metrics(k.value, sightings, alerts, hours[k]) for k in (AlertKind.face, AlertKind.plate)],
        latency_p50_ms=round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
        latency_p99_ms=round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
        frames_decoded=int(tot["decoded"]), frames_gate_skipped=int(tot["gate_skipped"]),
        frames_processed=int(tot["processed"]), frames_dropped=int(tot["dropped"]),
        wall_s=round(wall_s if wall_s is not None else time.time() - run.started, 1),
        sightings=sightings, alerts=alerts, cameras=cameras)
