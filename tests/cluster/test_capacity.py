"""The capacity model: cores per stage from measured costs, nodes, placement, and its clear errors."""

from __future__ import annotations

import math

import pytest

from cluster.capacity import NodeType, StageCosts, Workload, city_workload, national_workload, plan
from cluster.stagecosts import costs_from_run

COSTS = StageCosts(machine="test", cpus=2, decode_ms_per_frame=4.0, decode_pixels=768 * 576, draw_ms_per_frame=0.05,
                   gate_ms_per_frame=1.0, gate_synthetic_ms_per_frame=0.5, prepare_ms_per_frame=2.0,
                   shard_overhead_ms_per_frame=0.3, face_detect_ms_per_frame=150.0, face_embed_ms_per_face=40.0,
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


def test_costs_from_a_run_take_the_reader_stages_out() -> None:
    run = {"metrics": {"cameras": 100, "frames_decoded_per_s": 100.0, "cpu_pct_per_camera_shard": 0.5,
                       "cpu_pct_per_camera_reader": 0.2, "memory_mb_per_camera": 7.5, "control_plane_cpu_pct": 30.0}}
    got = costs_from_run(run, {})
    assert got == {"shard_overhead_ms_per_frame": pytest.approx(3.0), "mem_mb_per_camera": 7.5,
                   "control_plane_cores": 0.3}
    with pytest.raises(ValueError, match="no metrics"):
        costs_from_run({}, {})


def test_validation_against_a_run_reports_the_error() -> None:
    from cluster.capacity import validate

    costs = COSTS.model_copy(update={"synthetic_shard_ms_per_frame": 1.0, "synthetic_reader_ms_per_frame": 0.6})
    run = {"frames_decoded": 1000, "frames_processed": 800,
           "metrics": {"cameras": 100, "frames_decoded_per_s": 100.0, "cpu_pct_per_camera_shard": 0.125,
                       "cpu_pct_per_camera_reader": 0.06, "memory_mb_per_camera": 7.5, "control_plane_cpu_pct": 5.0}}
    v = validate(costs, run, overhead_from="test")
    # 100 frames/s x 1 ms = 0.1 cores predicted against 0.125 measured: -20 %; readers 0.06 against 0.06
    assert v.predicted_shard_cores == pytest.approx(0.1) and v.measured_shard_cores == pytest.approx(0.125)
    assert v.error_pct == pytest.approx(-20.0) and v.reader_error_pct == pytest.approx(0.0)
