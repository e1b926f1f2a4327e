"""Scenario cameras: frames drawn from a script, at the ground truth's place and size, through the source API."""

from __future__ import annotations

import numpy as np
import pytest

from actors.sources import VTEST, CameraSpec, ScenarioSource, SimPass, SimScript, SourceError, source_for
from twin.optics import target_box

pytestmark = pytest.mark.services  # a simulated city, rendered frames: slow on its own

NOON = 12 * 3600.0
EPOCH = 1_790_000_000.0


def _walk_in(t0: float, seconds: float = 6.0, start_m: float = 10.0, end_m: float = 2.0, b: float = 0.4,
             step: float = 0.25) -> tuple[list[float], list[float], list[float]]:
    t = np.arange(0.0, seconds + 1e-9, step)
    a = start_m + (end_m - start_m) * t / seconds
    return list(t0 + t), list(a), [b] * len(t)


def _person_script(faces_dir, t0: float = NOON, photo: str = "img1.jpg", night=(19, 6)) -> SimScript:
    t, a, b = _walk_in(t0)
    p = SimPass(sighting_id="s1", agent_kind="person", t=t, a=a, b=b, toward=[True] * len(t), photo=photo, seed=1)
    return SimScript(camera_kind="cctv", fov_deg=70.0, windows=[(t0 - 1, t0 + 6)], passes=[p],
                     assets_dir=str(faces_dir), background=str(VTEST) if VTEST.is_file() else None, epoch=EPOCH,
                     night=night)


def _spec(script: SimScript, **kw) -> CameraSpec:
    return CameraSpec(id="sim-cam", url="sim://sim-cam", fps=5.0, sim_script=script, **kw)


def test_frames_follow_the_script_in_scenario_time(shared_data):
    script = _person_script(shared_data / "faces_deepface")
    script.windows = [(NOON - 1, NOON + 2), (NOON + 100, NOON + 101)]
    src = source_for(_spec(script))
    assert isinstance(src, ScenarioSource)
    with src:
        frames = list(src.frames())
    pts = [f.pts - EPOCH for f in frames]
    # 3 s at 5 fps (16 frames), 3 frames standing for the 97 s skipped, then 1 s (6 frames)
    assert len(frames) == 16 + 3 + 6 == len(src.timeline())
    assert np.all(np.diff(pts) > 0) and pts[0] == pytest.approx(NOON - 1) and pts[-1] == pytest.approx(NOON + 101)
    assert all(f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8 and f.image.flags.c_contiguous
               for f in frames)
    resumed = _spec(script, start_pts=EPOCH + NOON + 1.5)
    with source_for(resumed) as src2:
        assert next(f.pts for f in src2.frames()) == pytest.approx(EPOCH + NOON + 1.6)


def test_person_is_drawn_where_and_as_large_as_the_ground_truth_says(shared_data):
    script = _person_script(shared_data / "faces_deepface")
    src = ScenarioSource(_spec(script))
    src.open()
    p = script.passes[0]
    k = len(p.t) - 3
    u, v, px, inside = target_box("cctv", np.array([p.a[k]]), np.array([p.b[k]]), script.fov_deg)
    assert inside[0] and px[0] > 30
    with_person = src.render(p.t[k], 0).astype(int)
    empty = src.render(NOON - 0.5, 0).astype(int)  # the same noise pattern, nobody in view
    x0, x1 = int(u[0] - px[0] * 0.4), int(u[0] + px[0] * 0.4)
    y0, y1 = int(v[0] - px[0] * 0.5), int(v[0] + px[0] * 0.5)
    diff = np.abs(with_person - empty).mean(axis=2)
    assert diff[y0:y1, x0:x1].mean() > 25  # the face is there
    far = diff.copy()
    far[:, max(0, x0 - 60):x1 + 60] = 0
    assert far.mean() < 1.0  # and nothing changed away from the person


def test_night_is_darker_and_missing_photos_are_clear_errors(shared_data):
    day = ScenarioSource(_spec(_person_script(shared_data / "faces_deepface")))
    day.open()
    night = ScenarioSource(_spec(_person_script(shared_data / "faces_deepface", t0=22 * 3600.0)))
    night.open()
    assert night.render(22 * 3600.0 - 0.5).mean() < 0.6 * day.render(NOON - 0.5).mean()
    bad = ScenarioSource(_spec(_person_script(shared_data / "faces_deepface", photo="nobody.jpg")))
    with pytest.raises(SourceError, match=r"nobody\.jpg") as e:
        bad.open()
    assert e.value.permanent
    with pytest.raises(ValueError, match="ordered"):
        SimScript(camera_kind="cctv", fov_deg=60, windows=[(10, 20), (15, 30)])


def test_plate_camera_frame_is_readable_by_the_plate_service():
    from serve.plate.distance import levenshtein
    from serve.plate.parse import parse_plate
    from serve.plate.service import PlateService

    plate = parse_plate("กข 1234", "สงขลา")
    t = [NOON, NOON + 2]
    p = SimPass(sighting_id="v1", agent_kind="vehicle", t=t, a=[8.0, 7.0], b=[-1.75, -1.75], toward=[True, True],
                plate=plate.text, seed=3)
    script = SimScript(camera_kind="plate", fov_deg=35.0, windows=[(NOON - 1, NOON + 3)], passes=[p],
                       background=str(VTEST) if VTEST.is_file() else None)
    src = ScenarioSource(CameraSpec(id="lpr", url="sim://lpr", fps=10, sim_script=script))
    src.open()
    _, _, px, inside = target_box("plate", np.array([7.5]), np.array([-1.75]), 35.0)
    assert inside[0] and 110 < px[0] < 160
    service = PlateService()
    car, empty = (np.ascontiguousarray(src.render(t)[:, :, ::-1]) for t in (NOON + 1, NOON - 0.5))
    reads, none = service.read([car, empty])
    # the simulated plates use held-out fonts: the frame must give the recogniser the number and province, and the
    # registration within one character (measured: 'กฆ1234' for 'กข1234' with the shipped model)
    assert any(r.plate is not None and r.plate.number == plate.number and r.plate.line2 == plate.line2
               and levenshtein(r.plate.key, plate.key) <= 1 for r in reads), [r.text for r in reads]
    assert all(r.plate is None or r.plate.key != plate.key for r in none)
