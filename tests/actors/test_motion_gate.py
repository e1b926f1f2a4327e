"""Motion gate and rate sampler on real footage (vtest.avi) and on its empty street."""

from __future__ import annotations

import numpy as np
import pytest

from actors.motion import MotionGate, MotionGateConfig
from actors.sampler import RateSampler, SamplerConfig


def _noisy(img: np.ndarray, rng: np.random.Generator, sigma: float = 2.5) -> np.ndarray:
    """A static frame as a real sensor delivers it: the same scene plus a little noise."""
    return np.clip(img.astype(np.int16) + rng.normal(0, sigma, img.shape).astype(np.int16), 0, 255).astype(np.uint8)


@pytest.mark.services
def test_busy_vtest_passes_almost_every_frame(vtest_frames: np.ndarray) -> None:
    gate = MotionGate()
    fracs = [gate.check(f).changed_fraction for f in vtest_frames]
    # pedestrians are in view the whole clip: a gate that skipped much here would lose people
    assert gate.skip_ratio <= 0.02, gate.skip_ratio
    assert float(np.median(fracs)) > 10 * gate.config.min_changed_fraction


@pytest.mark.services
def test_gate_skips_static_street_and_opens_for_people(vtest_frames: np.ndarray, empty_street: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    quiet = [_noisy(empty_street, rng) for _ in range(120)]
    busy = list(vtest_frames[200:300])
    clip = quiet + busy + quiet
    gate = MotionGate(MotionGateConfig(heartbeat_s=0))
    passed = np.array([gate.check(f).passed for f in clip])
    q1, b, q2 = passed[:120], passed[120:220], passed[220:]
    assert q1[10:].mean() <= 0.02  # static scene, sensor noise only: skipped
    assert b.mean() >= 0.99  # people walking: passed
    assert q2[40:].mean() <= 0.02  # once the background has re-learnt the empty street
    skip = 1 - passed.mean()
    assert 0.5 <= skip <= 0.75, skip


def test_single_small_walker_opens_the_gate(empty_street: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    gate = MotionGate(MotionGateConfig(heartbeat_s=0))
    for _ in range(30):
        assert not gate.check(_noisy(empty_street, rng)).passed or gate.seen <= gate.config.hold_frames + 1
    img = _noisy(empty_street, rng)
    img[100:130, 150:160] = (30, 40, 200)  # a 10x30-pixel person at 320x240
    d = gate.check(img)
    assert d.passed and d.reason == "motion"


def test_heartbeat_disabled_gate_and_bad_input(empty_street: np.ndarray) -> None:
    gate = MotionGate(MotionGateConfig(heartbeat_s=1.0, hold_frames=0))
    reasons = [gate.check(empty_street, ts=i * 0.1).reason for i in range(30)]
    assert reasons[0] == "first" and reasons.count("heartbeat") == 2  # at t=1.0 and t=2.0
    off = MotionGate(MotionGateConfig(enabled=False))
    assert all(off.check(empty_street).passed for _ in range(5)) and off.skip_ratio == 0
    with pytest.raises(ValueError, match="HxW"):
        gate.check(np.zeros((4, 4, 7), np.uint8))


def test_rate_sampler_brings_any_camera_to_its_rate() -> None:
    for fps in (25.0, 10.0, 7.0):
        s = RateSampler(SamplerConfig(rate_fps=2.0))
        n = sum(s.take(i / fps) for i in range(int(fps * 30)))
        assert n == pytest.approx(60, abs=2)
    s = RateSampler(SamplerConfig(rate_fps=2.0))
    assert s.take(100.0) and not s.take(100.1) and s.take(100.5)
    assert s.take(3.0)  # clock went backwards (looped file): restart, don't stall
    b = RateSampler(SamplerConfig(rate_fps=1.0, burst=3))
    assert [b.take(t) for t in (0, 0.01, 0.02, 0.03)] == [True, True, True, False]


def test_sampler_phases_spread_cameras_over_the_period() -> None:
    # three 10 fps cameras that started together, sampled at 2 fps with the phases a shard gives them (k/3)
    samplers = [RateSampler(SamplerConfig(rate_fps=2.0), k / 3) for k in range(3)]
    taken = [[round(i / 10, 1) for i in range(100) if s.take(i / 10)] for s in samplers]
    assert [t[:3] for t in taken] == [[0.0, 0.5, 1.0], [0.2, 0.7, 1.2], [0.4, 0.9, 1.4]]
    assert [len(t) for t in taken] == [20, 20, 20]  # the rate is the same; only the instants move
    with pytest.raises(ValueError, match=r"phase 1.0 is not in \[0, 1\)"):
        RateSampler(SamplerConfig(), 1.0)
