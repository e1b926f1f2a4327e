"""From ground truth to camera scripts: what each rendered camera plays, and which passes were played.

:func:`scripts` turns each rendered camera's sightings into the :class:`~actors.sources.script.SimScript` its
simulated camera plays (:class:`~actors.sources.scenario.ScenarioSource`), keeping at most ``stream_s``
seconds of footage per camera (passes of listed subjects first), and marks each sighting ``played`` (the pass
was streamed whole: it counts for recall) and ``drawn`` (the agent was in the picture at some point).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from cluster.sim.city import SimCity
from cluster.state import state_dir


def face_boxes(faces_dir: Path, files: list[str]) -> dict[str, tuple[float, float, float, float] | None]:
    """The main face of each photo as fractions (x0, y0, x1, y1), found with dlib's HOG detector.

    The simulator scales photos by their face, so a face drawn 48 px high is 48 px high. Results are cached
    in ``<state>/sim/face_boxes.json`` (keyed by file name and size); a photo without a detected face gets None
    (the renderer then assumes a centred portrait).
    """
    import dlib
    from PIL import Image

    cache_file = state_dir("sim") / "face_boxes.json"
    cache: dict[str, list[float] | None] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    detector = None
    out: dict[str, tuple[float, float, float, float] | None] = {}
    for f in files:
        path = faces_dir / f
        key = f"{f}:{path.stat().st_size}"
        if key not in cache:
            detector = detector or dlib.get_frontal_face_detector()
            with Image.open(path) as im:
                rgb = im.convert("RGB")
                s = min(1.0, 800 / max(rgb.size))
                small = np.asarray(rgb.resize((round(rgb.width * s), round(rgb.height * s))))
            dets = detector(small, 1)
            if len(dets):
                d = max(dets, key=lambda r: r.width() * r.height())
                h, w = small.shape[:2]
                cache[key] = [max(0.0, d.left() / w), max(0.0, d.top() / h), min(1.0, d.right() / w),
                              min(1.0, d.bottom() / h)]
            else:
                cache[key] = None
        box = cache[key]
        out[f] = tuple(box) if box else None  # type: ignore[assignment]
    cache_file.write_text(json.dumps(cache))
    return out


def _seed_of(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _close_window(row: pd.Series, max_dist_m: float, lead_s: float) -> tuple[float, float] | None:
    """The part of a pass worth rendering: while the agent is within ``max_dist_m`` (plus ``lead_s``)."""
    t = np.asarray(row["t"], float)
    d = np.hypot(np.asarray(row["a"], float), np.asarray(row["b"], float))
    near = np.flatnonzero(d <= max_dist_m)
    if not len(near):
        return None
    return float(t[near[0]]) - lead_s, float(t[near[-1]]) + lead_s


def watched(sightings: pd.DataFrame | pd.Series) -> pd.Series | bool:
    """Which sightings a camera is there for: people at CCTV (the face model), vehicles at plate cameras (the
    plate model). Traffic passing a CCTV camera is ground truth too, drawn, but no alert can be expected."""
    vehicle = sightings["agent_kind"] == "vehicle"
    return (sightings["camera_kind"] == "plate") == vehicle


def _priority(row: pd.Series) -> int:
    if not watched(row):
        return 4  # traffic passing a CCTV camera: drawn when in a chosen window, never chosen for itself
    if row["listed"] and row["recognisable"]:
        return 0
    if row["agent_kind"] != "crowd" and row["recognisable"]:
        return 1
    if row["listed"]:
        return 2
    return 3 if row["agent_kind"] != "crowd" else 4


def scripts(sim: SimCity) -> tuple[dict[str, object], pd.DataFrame]:
    """The :class:`~actors.sources.CameraSpec` of every rendered camera (playing its script) and the sightings
    of the rendered cameras with ``played`` (the pass was played, whole), ``drawn`` and ``window`` columns.

    Per camera, the close part of its passes (within 15 m for CCTV, the whole pass for plate cameras) is
    chosen by priority (listed and recognisable first, then other recognisable people, other listed passes,
    everyone else) until ``stream_s`` seconds of footage; overlapping windows merge, and every pass that
    overlaps a chosen window is drawn in it.
    """
    from actors.sources import VTEST, CameraSpec, SimPass, SimScript

    cfg = sim.config
    scen = sim.scenario
    agents = scen.agents.set_index("agent_id")
    cams = sim.registry.cameras_frame().set_index("id")
    photos = sorted({p for ps in agents["photos"] for p in ps})
    boxes = face_boxes(sim.faces_dir, photos) if photos else {}
    background = str(VTEST) if VTEST.is_file() else None
    specs: dict[str, object] = {}
    parts = []
    for i, cam_id in enumerate(sim.rendered_cameras):
        s = scen.at_camera(cam_id)
        kind = str(cams.loc[cam_id, "kind"])
        wins = [(_close_window(r, 15.0 if kind == "cctv" else 1e9, cfg.lead_s), _priority(r), r["t_in"])
                for _, r in s.iterrows()]
        order = sorted((k for k, w in enumerate(wins) if w[0] is not None), key=lambda k: (wins[k][1], wins[k][2]))
        chosen: list[tuple[float, float]] = []
        used = 0.0
        for k in order:
            a, b = wins[k][0]  # type: ignore[misc]
            if used + (b - a) > cfg.stream_s:
                continue
            chosen.append((a, b))
            used += b - a
        windows = _merge(chosen)
        t_in, t_out = s["t_in"].to_numpy(float), s["t_out"].to_numpy(float)
        # passes that overlap a window are in the picture: widen the window to hold them whole when they
        # were chosen, draw them in any case
        played = np.zeros(len(s), bool)
        drawn = np.zeros(len(s), bool)
        for a, b in windows:
            drawn |= (t_in <= b) & (t_out >= a)
        for k, w in enumerate(wins):
            if w[0] is not None and any(a <= w[0][0] and w[0][1] <= b for a, b in windows):
                played[k] = True
        passes = []
        for k in np.flatnonzero(drawn):
            r = s.iloc[int(k)]
            ag = agents.loc[r["agent_id"]]
            seed = _seed_of(str(r["sighting_id"]) + str(cfg.scenario.seed))
            photo = ag["photos"][seed % len(ag["photos"])] if r["agent_kind"] == "person" and ag["photos"] else None
            passes.append(SimPass(sighting_id=str(r["sighting_id"]), agent_kind=str(r["agent_kind"]),
                                  t=list(r["t"]), a=list(r["a"]), b=list(r["b"]), toward=list(r["toward"]),
                                  photo=photo, face_box=boxes.get(photo) if photo else None,
                                  plate=ag["plate"] if r["agent_kind"] == "vehicle" else None, seed=seed))
        script = SimScript(camera_kind=kind, fov_deg=float(cams.loc[cam_id, "fov_deg"]), windows=windows,
                           passes=passes, assets_dir=str(sim.faces_dir), background=background,
                           night=cfg.scenario.night, gap_frames=cfg.gap_frames)
        specs[cam_id] = CameraSpec(id=cam_id, url=f"sim://{cam_id}", realtime=True, seed=i,
                                   fps=cfg.plate_fps if kind == "plate" else cfg.fps,
                                   sim_script=script, grace_s=30.0)
        part = s.drop(columns=["t", "a", "b", "toward"]).assign(played=played, drawn=drawn)
        part["window"] = [w[0] for w in wins]
        parts.append(part)
    sightings = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return specs, sightings


def _merge(windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
