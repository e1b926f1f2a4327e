"""What a city-scale run costs and whether it raised what it had to: the numbers ``ssz run`` and
``ssz bench chaos`` report.

* :class:`UsageMeter` samples the shard processes (resident memory, CPU), the cameras' reader threads
  (decode + motion gate + sampling) and the Ray control plane (GCS, raylet and the other system processes of
  the cluster this driver joined) between two points of a run, on this node.
* :func:`truth_check` compares the alerts of a run with the ground truth of its synthetic cameras
  (:class:`actors.detectors.TruthDetector`): expected, raised, lost, duplicated, unexpected.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from actors.shard import ShardStats


class ScaleMetrics(BaseModel):
    """Resource use of a run between two samples (this node's processes)."""

    cameras: int = Field(description="cameras streaming")
    shards: int = Field(description="shard actors")
    wall_s: float = Field(description="seconds between the two samples")
    shard_start_s: float | None = Field(default=None, description="launch -> every camera delivered a frame (s)")
    memory_mb_per_camera: float = Field(description="resident memory of the shard processes / cameras (MB)")
    shard_rss_mb: float = Field(description="resident memory of all shard processes (MB)")
    cpu_pct_per_camera_reader: float = Field(description="reader threads (decode + gate + sample) CPU per camera, "
                                                         "% of one core")
    cpu_pct_per_camera_shard: float = Field(description="whole shard processes' CPU per camera, % of one core")
    control_plane_cpu_pct: float = Field(description="Ray system processes (GCS, raylet, ...): % of one core")
    sink_cpu_pct: float | None = Field(default=None, description="the alert sink actor's process: % of one core "
                                                                 "(None = not sampled)")
    frames_decoded_per_s: float = Field(description="frames decoded per second, all cameras")
    status_ms_p50: float | None = Field(default=None, description="ssz status round trip, median (ms)")
    status_ms_max: float | None = Field(default=None, description="ssz status round trip, slowest (ms)")
    load_avg_1m: float = Field(description="the machine's 1-minute load average at the end (shared machine)")


def _procs(pids: Iterable[int]) -> list[Any]:
    import psutil

    out = []
    for pid in set(pids):
        with contextlib.suppress(psutil.Error):
            out.append(psutil.Process(pid))
    return out


def _cpu_s(procs: Sequence[Any]) -> dict[int, float]:
    import psutil

    out = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[p.pid] = float(t.user + t.system)
    return out


def control_plane_pids(exclude: Iterable[int] = ()) -> list[int]:
    """Processes of the Ray cluster this driver is connected to that are not workers (GCS, raylet, agents...).

    Found by the cluster's GCS address on their command line; the ``exclude`` pids (shards, the sink) and
    this process are left out.
    """
    import psutil
    import ray

    address = ray.get_runtime_context().gcs_address
    port = address.rsplit(":", 1)[-1]
    marks = (address, f"--gcs_server_port={port}", f"--gcs-address={address}")
    skip = {os.getpid(), *exclude}
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if p.pid not in skip and any(m in cmd for m in marks) and "ray::" not in cmd:
            out.append(p.pid)
    return out


class UsageMeter:
    """Sample CPU at :meth:`begin` and :meth:`end`; memory at the end (see the module docstring)."""

    def __init__(self) -> None:
        self._t0 = 0.0
        self._cpu0: dict[int, float] = {}
        self._reader0: dict[str, float] = {}
        self._decoded0 = 0
        self._cp: list[int] = []
        self._sink = 0

    def begin(self, stats: Sequence[ShardStats], exclude: Iterable[int] = (), sink_pid: int = 0) -> None:
        """First sample: every shard answered (``stats``); ``exclude`` = other actor pids, not control plane;
        ``sink_pid``: the alert sink's process (sampled on its own; 0 = not sampled)."""
        pids = [s.pid for s in stats if s.pid]
        self._sink = sink_pid
        self._cp = control_plane_pids([*pids, *exclude, *([sink_pid] if sink_pid else [])])
        self._t0 = time.monotonic()
        self._cpu0 = _cpu_s(_procs([*pids, *self._cp, *([sink_pid] if sink_pid else [])]))
        self._reader0 = {c.camera_id: c.reader_cpu_s for s in stats for c in s.cameras}
        self._decoded0 = sum(c.decoded for s in stats for c in s.cameras)

    @property
    def started(self) -> bool:
        """Whether :meth:`begin` was called."""
        return self._t0 > 0

    def end(self, stats: Sequence[ShardStats], shard_start_s: float | None = None,
            status_ms: Sequence[float] = ()) -> ScaleMetrics:
        """Second sample and the metrics between the two."""
        import numpy as np

        wall = max(1e-6, time.monotonic() - self._t0)
        pids = [s.pid for s in stats if s.pid]
        procs = _procs(pids)
        cpu1 = _cpu_s(_procs([*pids, *self._cp, *([self._sink] if self._sink else [])]))
        rss = 0
        for p in procs:
            with contextlib.suppress(Exception):
                rss += p.memory_info().rss
        cams = [c for s in stats for c in s.cameras]
        n = max(1, len(cams))
        shard_cpu = sum(cpu1.get(p, 0.0) - self._cpu0.get(p, cpu1.get(p, 0.0)) for p in pids)
        cp_cpu = sum(cpu1.get(p, 0.0) - self._cpu0.get(p, 0.0) for p in self._cp if p in cpu1)
        # a restarted camera reader starts its thread clock again: count what it used since then
        reader = sum(max(0.0, c.reader_cpu_s - self._reader0.get(c.camera_id, 0.0))
                     if c.reader_cpu_s >= self._reader0.get(c.camera_id, 0.0) else c.reader_cpu_s for c in cams)
        decoded = sum(c.decoded for c in cams) - self._decoded0
        return ScaleMetrics(
            cameras=len(cams), shards=len(stats), wall_s=round(wall, 1),
            shard_start_s=None if shard_start_s is None else round(shard_start_s, 1),
            memory_mb_per_camera=round(rss / n / 2**20, 2), shard_rss_mb=round(rss / 2**20, 1),
            cpu_pct_per_camera_reader=round(100 * reader / wall / n, 3),
            cpu_pct_per_camera_shard=round(100 * shard_cpu / wall / n, 3),
            control_plane_cpu_pct=round(100 * cp_cpu / wall, 1),
            sink_cpu_pct=round(100 * (cpu1[self._sink] - self._cpu0[self._sink]) / wall, 2)
            if self._sink in cpu1 and self._sink in self._cpu0 else None,
            frames_decoded_per_s=round(decoded / wall, 1),
            status_ms_p50=round(float(np.percentile(status_ms, 50)), 1) if status_ms else None,
            status_ms_max=round(max(status_ms), 1) if status_ms else None,
            load_avg_1m=round(os.getloadavg()[0], 2))


class TruthReport(BaseModel):
    """A run's alerts against the ground truth of its synthetic cameras."""

    expected: int = Field(description="listed walkers confirmed within what each camera played")
    raised: int = Field(description="alerts of the run (kinds face and plate)")
    matched: int = Field(description="expected alerts raised")
    lost: int = Field(description="expected alerts not raised")
    duplicated: int = Field(description="alerts beyond the first for one (camera, subject)")
    unexpected: int = Field(description="alerts for no expected (camera, subject): beyond the played end, or false")
    lost_examples: list[str] = Field(default=[], description="up to 10 lost (camera, subject) pairs")
    max_delay_s: float | None = Field(default=None, description="slowest frame decoded -> alert written (s)")


def truth_check(specs: dict[str, Any], stats: Sequence[ShardStats], alerts: Sequence[dict[str, Any]], *,
                wanted_every: int, min_matches: dict[str, int], labels: dict[str, str],
                min_visible: float = 0.5, n_from: dict[str, int] | None = None) -> TruthReport:
    """Compare ``alerts`` (rows with ``camera_id``, ``subject_id``, ``kind``) with the truth of ``specs``.

    Parameters
    ----------
    specs
        Camera id -> its synthetic spec, as streamed.
    stats
        The shards' final numbers: each camera's ``position_pts`` bounds what it played.
    alerts
        The alert rows written during the run (``alerts(written=True)``: ``ts`` decoded, ``written_ts`` stored).
    wanted_every, min_visible
        As the :class:`~actors.detectors.TruthDetector` was built.
    min_matches
        Detection label -> frames needed to confirm (the confirmer's settings).
    labels
        Camera id -> detection label (``face``, ``plate``).
    n_from
        Camera id -> first frame number played (default 0).
    """
    from actors.detectors import expected_truth_alerts, frame_number

    pos = {c.camera_id: c.position_pts for s in stats for c in s.cameras}
    expected: set[tuple[str, str]] = set()
    for cid, spec in specs.items():
        p = pos.get(cid)
        if p is None:
            continue
        label = labels.get(cid, "face")
        exp = expected_truth_alerts(spec, frame_number(spec, p), wanted_every=wanted_every,
                                    min_matches=min_matches.get(label, 3), min_visible=min_visible,
                                    n_from=(n_from or {}).get(cid, 0))
        expected |= {(cid, subj) for subj in exp}
    got = Counter((a["camera_id"], a["subject_id"]) for a in alerts if a.get("kind") in ("face", "plate"))
    raised = sum(got.values())
    matched = expected & set(got)
    lost = sorted(expected - set(got))
    # ``ts`` is when the confirming frame was decoded (wall clock), ``written_ts`` when the record was stored
    delays = [(a["written_ts"] - a["ts"]).total_seconds() for a in alerts
              if a.get("ts") is not None and a.get("written_ts") is not None]
    return TruthReport(expected=len(expected), raised=raised, matched=len(matched), lost=len(lost),
                       duplicated=sum(n - 1 for n in got.values() if n > 1),
                       unexpected=sum(n for k, n in got.items() if k not in expected),
                       lost_examples=[f"{c}:{s}" for c, s in lost[:10]],
                       max_delay_s=round(max(delays), 2) if delays else None)
