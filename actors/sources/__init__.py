"""Camera sources: one interface, one module per source, a reader thread and a health watchdog per camera.

* :mod:`actors.sources.base`: :class:`CameraSpec` (a camera as a shard opens it; kept outside the actor so a
  restarted shard resumes it), :class:`Frame`, the :class:`CameraSource` interface, :data:`SOURCE_REGISTRY`
  and :func:`make_source` / :func:`source_for`;
* :mod:`actors.sources.pyav` (``pyav``): RTSP, HTTP(S) and files through PyAV;
* :mod:`actors.sources.synthetic` (``synthetic``): deterministic synthetic frames or a looped video;
* :mod:`actors.sources.scenario` (``scenario``): a simulated camera playing a
  :class:`~actors.sources.script.SimScript` of the simulation;
* :mod:`actors.sources.reader`: :class:`CameraReader` runs one camera on its own thread and reconnects;
* :mod:`actors.sources.health`: :class:`CameraHealth` turns frame arrivals into health states and events;
* :mod:`actors.sources.geometry`: display rotation, greyscale to RGB, and :class:`StreamClock` (stream-time
  epochs over restarts).

Importing this package registers every source.
"""

from actors.sources.base import (
    NETWORK_SCHEMES,
    SOURCE_REGISTRY,
    CameraSource,
    CameraSpec,
    Frame,
    SourceError,
    SourceStats,
    make_source,
    source_for,
    source_name,
)
from actors.sources.geometry import StreamClock
from actors.sources.health import CameraHealth, HealthEvent, HealthState
from actors.sources.pyav import PyAVSource
from actors.sources.reader import CameraReader, ReaderStats
from actors.sources.scenario import VTEST, ScenarioSource
from actors.sources.script import SimPass, SimScript
from actors.sources.synthetic import SimulatedSource

__all__ = [
    "NETWORK_SCHEMES", "SOURCE_REGISTRY", "VTEST", "CameraHealth", "CameraReader", "CameraSource", "CameraSpec",
    "Frame", "HealthEvent", "HealthState", "PyAVSource", "ReaderStats", "ScenarioSource", "SimPass", "SimScript",
    "SimulatedSource", "SourceError", "SourceStats", "StreamClock", "make_source", "source_for", "source_name",
]
