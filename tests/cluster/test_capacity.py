"""The capacity model: cores per stage from measured costs, nodes, placement, and its clear errors."""

from __future__ import annotations

import math

import pytest

from cluster.capacity import NodeType, StageCosts, Workload, city_workload, national_workload, plan
from cluster.stagecosts import calibrate, parse_points

COSTS = StageCosts(machine="test", cpus=2, decode_ms_per_frame=4.0, decode_pixels=768 * 576, draw_ms_per_frame=0.05,
                   gate_ms_per_frame=1.0, gate_synthetic_ms_per_frame=0.5, prepare_ms_per_frame=2.0,
                   shard_ms_per_processed_frame=0.3, shard_ms_per_camera_s=2.0, sink_cores=0.05,
                   sink_ms_per_camera_s=0.5, control_plane_ms_per_camera_s=1.0, face_detect_ms_per_frame=150.0,
                   face_embed_ms_per_face=40.0,
                   plate_ms_per_frame=100.0, mem_mb_per_camera=8.0, control_plane_cores=0.2)


def test_cores_per_stage_follow_the_rates() -> None:
    w = Workload(name="x", cctv=100, plate=10, fps=10, sample_fps=2, plate_sample_fps=4, gate_pass=0.5,
                 faces_per_frame=0.5, pixels=768 * 576)
    p = plan(COSTS, w, NodeType(cores=16, utilisation=0.5))
    by = {s.stage: s for s in p.stages}
    assert by["decode"].cores == pytest.approx(110 * 10 * 4.0 / 1000)
    assert by["motion gate"].cores == pytest.approx(1.1)
    assert by["sample + prepare"].items_per_s == pytest.approx(100 * 2 + 10 * 4)  # min(sample, fps x gate)
    assert by["face detect (MTCNN)"].cores == pytest.approx(200 * 0.15)
    assert by["face embed (dlib)"].cores == pytest.approx(100 * 0.04)
    assert by["plate read (localise + OCR)"].cores == pytest.approx(40 * 0.1)
    assert p.cores == pytest.approx(sum(s.cores for s in p.stages), abs=0.01)
    assert p.nodes == math.ceil(p.cores / 8) and p.shards == 4 and p.memory_gb == pytest.approx(0.9, abs=0.05)
    assert sum(s.share for s in p.stages) == pytest.approx(1.0, abs=0.01)


def test_bundled_cities_and_the_national_case() -> None:
    hy, bt, nat = city_workload("hatyai"), city_workload("betong"), national_workload(100)
    assert (hy.cctv, hy.plate) == (617, 48) and bt.cctv == 204 and nat.cctv == 61_700
    ph, pn = plan(COSTS, hy), plan(COSTS, nat)
    assert pn.cores == pytest.approx(100 * (ph.cores - 0.2) + 0.2, rel=0.01)
    assert pn.nodes > ph.nodes


def test_missing_costs_and_gpus_without_gpu_costs_are_clear_errors() -> None:
    bare = COSTS.model_copy(update={"face_detect_ms_per_frame": None})
    with pytest.raises(ValueError, match="ssz bench stages"):
        plan(bare, city_workload("hatyai"))
    with pytest.raises(ValueError, match="no GPU costs"):
        plan(COSTS, city_workload("hatyai"), NodeType(gpus=1))


def test_overheads_per_camera_and_per_processed_frame() -> None:
    w = Workload(name="x", cctv=100, plate=10, fps=10, sample_fps=2, plate_sample_fps=4, gate_pass=0.5,
                 pixels=768 * 576)
    by = {s.stage: s for s in plan(COSTS, w).stages}
    assert by["shard per processed frame (batch, detector call, tracking, Ray)"].cores == pytest.approx(240 * 0.3e-3)
    assert by["shard per camera-second (health, checkpoints, status, Ray worker)"].cores == pytest.approx(0.22)
    assert by["alert sink per camera-second"].cores == pytest.approx(0.05 + 110 * 0.5e-3)
    assert by["control plane (GCS, raylet)"].cores == pytest.approx(0.2 + 0.11)


def _run(cams: int, fps: float, ratio: float, *, reader: float, shard: float, sink: float, cp: float) -> dict:
    """A recorded `ssz run --detect truth --json` (only the fields the model reads); CPU in cores."""
    decoded = int(cams * fps * 60)
    return {"frames_decoded": decoded, "frames_processed": int(decoded * ratio), "starved": 0,
            "fps_decoded_min": fps, "metrics": {
                "cameras": cams, "wall_s": 60.0, "frames_decoded_per_s": cams * fps, "memory_mb_per_camera": 9.5,
                "cpu_pct_per_camera_reader": 100 * reader / cams, "cpu_pct_per_camera_shard": 100 * shard / cams,
                "sink_cpu_pct": 100 * sink, "control_plane_cpu_pct": 100 * cp, "load_avg_1m": 1.5}}


def _truth(cams: int, fps: float, ratio: float) -> dict:
    """A run whose costs follow r = 0.6 ms/frame, a = 1.5 ms per camera-s, c = 1.0 ms per processed frame,
    sink 0.02 + 0.2 ms per camera-s, control plane 0.05 + 0.4 ms per camera-s."""
    f = cams * fps
    return _run(cams, fps, ratio, reader=0.6e-3 * f, shard=0.6e-3 * f + 1.5e-3 * cams + 1.0e-3 * f * ratio,
                sink=0.02 + 0.2e-3 * cams, cp=0.05 + 0.4e-3 * cams)


def _calibrated() -> StageCosts:
    return StageCosts.model_validate({**COSTS.model_dump(), **calibrate([_truth(32, 10, 0.14), _truth(96, 1, 0.5)])})


def test_calibration_fits_the_terms_of_recorded_runs() -> None:
    got = calibrate([_truth(32, 10, 0.14), _truth(96, 1, 0.5)])
    assert got["reader_ms_per_frame"] == pytest.approx(0.6, abs=1e-3)
    assert got["shard_ms_per_camera_s"] == pytest.approx(1.5, abs=1e-3)
    assert got["shard_ms_per_processed_frame"] == pytest.approx(1.0, abs=1e-3)
    assert (got["sink_cores"], got["sink_ms_per_camera_s"]) == (pytest.approx(0.02, abs=1e-4), pytest.approx(0.2))
    assert got["control_plane_cores"] == pytest.approx(0.05, abs=1e-4)
    assert got["control_plane_ms_per_camera_s"] == pytest.approx(0.4, abs=1e-3)
    assert [c["cameras"] for c in got["calibration"]] == [32, 96] and got["mem_mb_per_camera"] == 9.5
    with pytest.raises(ValueError, match="different camera counts"):
        calibrate([_truth(32, 10, 0.14), _truth(32, 1, 0.5)])
    with pytest.raises(ValueError, match="vary the frame rate"):
        calibrate([_truth(32, 2, 0.5), _truth(96, 2, 0.5)])
    with pytest.raises(ValueError, match="no metrics"):
        calibrate([{}, _truth(96, 1, 0.5)])


def test_calibration_points_parse_or_say_what_is_wrong() -> None:
    assert parse_points("32x10, 96x1") == [(32, 10.0), (96, 1.0)] and parse_points("") == []
    for bad in ("32", "0x10", "32x0", "ax1", "32x40"):
        with pytest.raises(ValueError, match="CAMERASxFPS"):
            parse_points(bad)


def test_validation_predicts_a_run_it_was_not_fitted_on() -> None:
    from cluster.capacity import validate

    costs = _calibrated()
    # a bigger run at another rate, 10 % above the calibrated costs in every process
    truth = _truth(665, 1, 0.45)
    m = truth["metrics"]
    for k in ("cpu_pct_per_camera_reader", "cpu_pct_per_camera_shard", "sink_cpu_pct", "control_plane_cpu_pct"):
        m[k] *= 1.1
    v = validate(costs, truth, utilisation=0.9)
    per_cam = 0.6e-3 + 1.5e-3 + 1.0e-3 * 0.45 + 0.2e-3 + 0.4e-3  # cores per camera at 1 fps
    predicted = 0.07 + 665 * per_cam
    assert v.predicted_cores == pytest.approx(predicted, abs=2e-3)
    assert v.measured_cores == pytest.approx(1.1 * predicted, abs=2e-3)
    assert v.error_pct == pytest.approx(100 * (1 / 1.1 - 1), abs=0.2)  # -9.1 %
    assert v.parts["sink"]["predicted"] == pytest.approx(0.02 + 0.133, abs=1e-3)
    assert v.predicted_max_cameras == int((2 * 0.9 - 0.07) / per_cam)
    assert v.independent and v.run_kept_up and [c.cameras for c in v.calibration] == [32, 96]
    assert not validate(costs, _truth(96, 1, 0.5)).independent  # a calibration run validates nothing
    with pytest.raises(ValueError, match="not calibrated"):
        validate(COSTS, truth)
    del truth["metrics"]["sink_cpu_pct"]
    with pytest.raises(ValueError, match="sink_cpu_pct"):
        validate(costs, truth)


def test_validate_command_prints_the_error_as_json(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from cluster.cli import app
    from cluster.stagecosts import write_costs

    costs = write_costs(_calibrated(),
                        tmp_path / "costs.json")
    (tmp_path / "run.json").write_text(json.dumps(_truth(200, 2, 0.4)))
    res = CliRunner().invoke(app, ["plan", "capacity", "--costs", str(costs), "--validate", str(tmp_path / "run.json")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["run_cameras"] == 200 and out["error_pct"] == pytest.approx(0.0, abs=0.5) and out["independent"]
    (tmp_path / "bad.json").write_text("{}")
    res = CliRunner().invoke(app, ["plan", "capacity", "--costs", str(costs), "--validate", str(tmp_path / "bad.json")])
    assert res.exit_code != 0 and "no metrics" in res.output and "Traceback" not in res.output


def test_validate_on_recorded_runs_of_this_2_core_machine() -> None:
    """Stage costs that `ssz bench stages --no-models` measured here (calibration: 32 cameras at 10 fps, 96 at 1 fps,
    128 at 0.5 fps; load 3-4) predict three other recorded `ssz run --detect truth` runs of Hat Yai: the errors the
    report gives (the spread follows the machine's load from other jobs: 5, 23 and 33)."""
    import json
    from pathlib import Path

    from cluster.capacity import load_costs, validate

    data = Path(__file__).parent / "data" / "capacity"
    costs = load_costs(data / "stage_costs_2core.json")
    assert [(c.cameras, round(c.fps, 1)) for c in costs.calibration] == [(32, 10.0), (96, 1.0), (128, 0.5)]
    for name, cams, error in (("run_hatyai_665x1fps_load23.json", 665, 3.3),
                              ("run_hatyai_665x1fps_load33.json", 665, -8.3),
                              ("run_hatyai_160x4fps_load5.json", 160, 20.3)):
        v = validate(costs, json.loads((data / name).read_text()))
        assert v.run_cameras == cams and v.independent and v.run_kept_up
        assert v.error_pct == pytest.approx(error, abs=0.05), (name, v)
        assert v.measured_cores == pytest.approx(sum(v.parts[k]["measured"] for k in ("shards", "sink",
                                                                                       "control_plane")), abs=2e-3)
