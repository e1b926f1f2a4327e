"""What ``ssz eval`` measured: the metrics and the tables behind them, as one typed value.

:mod:`cluster.sim.evaluation` fills an :class:`EvalResult` by running a scenario and matching its alerts with
the scenario's ground truth; :mod:`cluster.sim.report` turns it into the markdown/HTML report. Keeping the value in
its own module lets both sides (and tests) build one without running anything.

Tables (pandas DataFrames, one row each):

* ``sightings``: every pass of an agent through a *rendered* camera's view. Columns ``sighting_id``,
  ``camera_id``, ``camera_kind`` (``cctv``/``plate``), ``agent_id``, ``agent_kind`` (``person``: a
  known face; ``crowd``: a passer-by without one; ``vehicle``), ``subject_id`` (warrant or hotlist id; None
  when not listed), ``listed`` (bool), ``t_in``,
  ``t_out`` (seconds since the scenario day's midnight), ``hour`` (local hour of ``t_in``), ``night`` (bool),
  ``min_dist_m``, ``max_px`` (largest face height / plate width in pixels over the pass), ``facing`` (the face
  or plate was turned to the camera at some point), ``recognisable`` (bool: expected to be alerted when
  listed), ``played`` (bool: the pass was streamed whole), ``drawn`` (bool: the agent was in the picture at
  some point), ``window`` (the stretch of the pass worth streaming), ``detected`` (bool: a true alert matched
  it), ``alert_delay_s`` (stream seconds from ``t_in`` to the first matching alert, NaN when none).
* ``alerts``: every face/plate alert of the run. Columns ``alert_id``, ``camera_id``, ``kind``,
  ``subject_id``, ``pts`` (stream seconds since midnight of the frame that confirmed it), ``score``,
  ``latency_ms`` (frame decoded -> alert written), ``true`` (bool: matched a sighting of that subject at that
  camera and time), ``sighting_id`` (the match, None for false alerts).
* ``cameras``: per rendered camera. Columns ``camera_id``, ``camera_kind``, ``decoded``, ``gate_skipped``,
  ``processed``, ``dropped``, ``alerts``, ``false_alerts``, ``stream_s`` (seconds of simulated footage).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field


class KindMetrics(BaseModel):
    """Recall and precision of one alert kind (``face`` or ``plate``)."""

    kind: str
    listed_sightings: int = Field(description="passes of listed subjects through rendered cameras")
    recognisable: int = Field(description="of those, close, lit and facing enough to be expected")
    detected: int = Field(description="recognisable passes with at least one true alert")
    detected_any: int = Field(description="listed passes (recognisable or not) with a true alert")
    recall: float | None = Field(description="detected / recognisable")
    recall_all: float | None = Field(description="detected_any / listed_sightings")
    alerts: int
    true_alerts: int
    false_alerts: int
    precision: float | None = Field(description="true_alerts / alerts")
    unlisted_sightings: int = Field(description="passes of people/vehicles not on any list (must never alert)")
    unlisted_alerted: int = Field(description="unlisted passes that raised an alert (privacy failures)")
    camera_hours: float = Field(description="simulated hours of footage on cameras of this kind")
    false_per_camera_hour: float | None


class EvalResult(BaseModel):
    """Everything ``ssz eval`` measured on one scenario run."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    city: str
    seed: int
    scenario: dict[str, Any] = Field(description="scenario size: agents, listed, cameras rendered, sim day...")
    metrics: list[KindMetrics]
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    frames_decoded: int
    frames_gate_skipped: int
    frames_processed: int
    frames_dropped: int
    wall_s: float
    sightings: pd.DataFrame
    alerts: pd.DataFrame
    cameras: pd.DataFrame

    def table(self) -> list[dict[str, Any]]:
        """The headline table: one row per kind with recall, precision, false alerts per camera-hour."""
        return [{"kind": m.kind, "recall": m.recall, "recall_all": m.recall_all, "precision": m.precision,
                 "false_per_camera_hour": m.false_per_camera_hour, "recognisable": m.recognisable,
                 "detected": m.detected, "alerts": m.alerts, "false_alerts": m.false_alerts,
                 "unlisted_alerted": m.unlisted_alerted} for m in self.metrics]
