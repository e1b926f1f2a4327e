"""Per-camera rate sampling: pass at most ``rate_fps`` frames per second of a camera's (gated) frames.

The sampler works on frame timestamps, not on frame counts, so a camera that delivers 25 fps and one that
delivers 7 fps are both brought to the same detector rate, and a camera whose clock jumps (reconnect,
looped file) does not stall: a timestamp that goes backwards restarts the schedule.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SamplerConfig(BaseModel):
    """Target detector rate of one camera."""

    model_config = ConfigDict(extra="forbid")

    rate_fps: float = Field(default=2.0, gt=0, le=120, description="frames per second sent on to detectors")
    burst: int = Field(default=1, ge=1, le=10, description="frames allowed back to back after a quiet spell")


class RateSampler:
    """A token bucket over frame timestamps: ``rate_fps`` tokens per second, at most ``burst`` saved up.

    Frames arrive at discrete times, so the fractional credit of the last frame gap is never discarded:
    a 7 fps camera sampled at 2 fps yields 2.0 frames per second on average, not 1.75.
    """

    def __init__(self, config: SamplerConfig | None = None, phase: float = 0.0) -> None:
        """``phase`` (0 <= phase < 1) shifts the camera's sampling instants by that fraction of a period: a
        shard gives its n cameras the phases k/n, so their sampled frames reach the detector one after another
        instead of in bursts (cameras that started together, or share one clock, would otherwise sample at the
        same instants and queue behind each other).

        Raises
        ------
        ValueError
            A phase outside [0, 1).
        """
        if not 0.0 <= phase < 1.0:
            raise ValueError(f"sampler phase {phase} is not in [0, 1): give the fraction of a sampling period")
        self.config = config or SamplerConfig()
        self.phase = phase
        self._tokens = float(self.config.burst) - phase
        self._last_ts: float | None = None
        self.seen = 0
        self.taken = 0

    def take(self, ts: float) -> bool:
        """Whether the frame at ``ts`` (seconds) is sampled."""
        self.seen += 1
        c = self.config
        if self._last_ts is None or ts < self._last_ts:
            self._tokens = float(c.burst) - self.phase
        else:
            gain = (ts - self._last_ts) * c.rate_fps
            # a frame gap shorter than one period keeps its fractional credit (so 7 fps -> 2 fps averages 2.0);
            # after a quiet spell the bucket is capped at ``burst``
            cap = float(c.burst) + (gain if gain < 1.0 else 0.0)
            self._tokens = min(cap, self._tokens + gain)
        self._last_ts = ts
        if self._tokens >= 1.0 - 1e-9:
            self._tokens -= 1.0
            self.taken += 1
            return True
        return False

    def reset(self) -> None:
        """Start the schedule again (the stream was reconfigured); the counters are kept."""
        self._tokens = float(self.config.burst) - self.phase
        self._last_ts = None

    @property
    def ratio(self) -> float:
        """Fraction of offered frames sampled so far."""
        return self.taken / self.seen if self.seen else 1.0
