"""The script a simulated camera plays: which passes it renders, when, and with which face or plate.

A :class:`SimScript` travels inside the camera's :class:`~actors.sources.base.CameraSpec` (``sim_script``), so
a restarted shard re-opens the same stream. It holds only geometry and references (photo file names, plate
text), never pixels: :class:`actors.sources.scenario.ScenarioSource` draws the frames from it. The simulation
(:mod:`cluster.sim.scripts`) writes it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SimPass(BaseModel):
    """One agent crossing the camera's view: positions in the camera frame over scenario time."""

    model_config = ConfigDict(extra="forbid")

    sighting_id: str
    agent_kind: Literal["person", "crowd", "vehicle"]
    t: list[float] = Field(min_length=1, description="scenario seconds since midnight")
    a: list[float] = Field(min_length=1, description="metres ahead of the camera")
    b: list[float] = Field(min_length=1, description="metres to its right")
    toward: list[bool] = Field(min_length=1, description="face/plate turned to the camera")
    photo: str | None = Field(default=None, description="person: photo file name in the script's assets_dir")
    face_box: tuple[float, float, float, float] | None = Field(
        default=None, description="face in the photo as fractions (x0, y0, x1, y1)")
    plate: str | None = Field(default=None, description="vehicle: plate text (registration, newline, province)")
    seed: int = 0

    @model_validator(mode="after")
    def _same_length(self) -> SimPass:
        if not len(self.t) == len(self.a) == len(self.b) == len(self.toward):
            raise ValueError(f"pass {self.sighting_id}: t, a, b and toward must have the same length")
        return self


class SimScript(BaseModel):
    """What one simulated camera renders: its lens, the scenario windows to play and the passes in them."""

    model_config = ConfigDict(extra="forbid")

    camera_kind: Literal["cctv", "plate"]
    fov_deg: float = Field(gt=0, le=360)
    epoch: float = Field(default=0.0, description="frame pts = epoch + scenario seconds (the scenario day's "
                                                 "local midnight as a Unix time keeps track ids unique per day)")
    windows: list[tuple[float, float]] = Field(description="(start, end) scenario seconds played, in order")
    passes: list[SimPass] = []
    assets_dir: str | None = Field(default=None, description="folder of the face photos")
    background: str | None = Field(default=None, description="video whose empty street is the background")
    night: tuple[int, int] = (19, 6)
    gap_frames: int = Field(default=3, ge=1, description="empty frames standing for the time skipped between windows")

    @model_validator(mode="after")
    def _ordered(self) -> SimScript:
        last = float("-inf")
        for a, b in self.windows:
            if b < a or a < last:
                raise ValueError(f"windows must be ordered and not overlap; got ({a}, {b}) after {last}")
            last = b
        return self
