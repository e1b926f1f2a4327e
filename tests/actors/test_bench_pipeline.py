"""The pipeline benchmark's building blocks on small real inputs (MTCNN with its shipped weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actors.bench import _events, bench_faces, bench_gate, face_walkers
from actors.motion import MotionGateConfig
from actors.sampler import SamplerConfig

pytestmark = pytest.mark.services  # a solver, a notebook, plots or a benchmark: slow on its own


def test_event_grouping() -> None:
    sampled = [0, 5, 10, 15, 20, 25, 30, 35]
    assert _events([5, 10, 20, 35], sampled, gap=1) == [[5, 10, 20], [35]]
    assert _events([5, 10, 20, 35], sampled, gap=0) == [[5, 10], [20], [35]]
    assert _events([], sampled, gap=2) == []


def test_gate_bench_numbers(vtest_frames: np.ndarray) -> None:
    r = bench_gate(list(vtest_frames[:300]), MotionGateConfig())
    assert r["skip_ratio_vtest"] <= 0.05  # busy scene
    assert 0.6 <= r["skip_ratio_quiet_hours_clip"] <= 0.9  # mostly empty street, heartbeat every 2 s
    assert r["gate_us_per_frame"] > 0


def test_gate_loses_no_face_event(vtest_frames: np.ndarray, shared_data: Path) -> None:
    faces = shared_data / "faces_deepface"
    frames = list(vtest_frames[:10])
    walkers = face_walkers(np.asarray(frames[0]), faces, n_people=1)
    assert len(walkers) == 120 and walkers[0].shape == frames[0].shape
    r = bench_faces(frames, MotionGateConfig(), SamplerConfig(rate_fps=1.0), faces, detect_width=320,
                    device="cpu", n_people=1)
    assert r["face_walker_frames"] == 120
    assert r["face_events_without_gate"] >= 1 and r["face_frames_without_gate"] >= 3
    assert r["missed_with_gate"] == 0
    assert r["sampled_with_gate"] < r["sampled_without_gate"]  # the gate did skip the empty street
