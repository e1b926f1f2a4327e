"""The capacity model: from measured per-stage costs to the nodes, cores and GPUs a city needs.

``ssz bench stages`` measures what one frame, face or plate costs in each stage on this machine and writes
:class:`StageCosts` as JSON (``$SSZ_HOME/bench/stage_costs.json``). ``ssz plan capacity`` turns those costs,
a city's cameras (:class:`Workload`: frame rate, sample rates, gate pass ratio, faces and plates per frame)
and a node type into a :class:`CapacityPlan`: the CPU cores (and GPUs, when GPU costs were measured) of every
stage, the nodes, the Ray placement (shards per node, model replicas) and each stage's share. The model is
linear in the rates: a stage's cores = items per second x seconds per item; a node is used up to
``utilisation`` of its cores.

Stages (per camera per second, ``r`` = frame rate, ``s`` = sampled frames per second = min(sample rate,
r x gate pass ratio)):

* ``decode``: r x decode (scaled by pixels from the measured resolution), ``gate``: r x gate;
* ``sample+prepare``: s x downsize (simulated cameras: ``readers`` = r x the reader threads' cost per frame
  in a shard actor, which holds draw, gate, sample and prepare);
* ``shard per processed frame``: s x batching, detector call, tracking and Ray per processed frame;
  ``shard per camera-second``: what a shard actor spends per camera whatever its rate (health polls,
  resume-state saves, status answers, Ray's worker threads);
* ``face detect``: s x MTCNN per frame; ``face embed``: s x faces per frame x dlib per face;
* ``plate read``: s x localise + OCR per frame (plate cameras);
* ``alert sink`` and ``control plane`` (Ray's GCS, raylet, agents): fixed cores + cost per camera.

The shard, sink and control-plane terms are fitted (non-negative least squares) on short calibration runs of
``ssz run --detect truth`` that ``ssz bench stages`` makes itself (two or more camera counts and frame rates);
:func:`validate` then predicts a *different* measured run from them (``ssz plan capacity --validate``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# What --validate and --from-run read, in the words of their errors.
RUN_JSON = "a JSON object written by `ssz run --detect truth --json`"


class MeasuredRun(BaseModel):
    """What the processes of one ``ssz run --detect truth --json`` used (a calibration run, or a validated one)."""

    model_config = ConfigDict(extra="forbid")

    cameras: int = Field(ge=1, description="cameras streaming")
    fps: float = Field(gt=0, description="frames decoded per camera per second")
    processed_ratio: float = Field(ge=0, le=1, description="frames processed / frames decoded")
    wall_s: float = Field(gt=0, description="seconds measured")
    load_avg_1m: float = Field(ge=0, description="the machine's 1-minute load average at its end")
    shard_cores: float = Field(ge=0, description="shard processes, cores")
    reader_cores: float = Field(ge=0, description="of which the cameras' reader threads")
    sink_cores: float = Field(ge=0, description="the alert sink's process, cores")
    control_plane_cores: float = Field(ge=0, description="Ray's system processes, cores")
    kept_up: bool = Field(default=True, description="no starved camera, the slowest decoding >= 90 % of the mean")


def measured_run(summary: dict[str, Any]) -> MeasuredRun:
    """The CPU of a run's processes from its JSON (``ssz run --detect truth --json``, a ``RunSummary``).

    Raises
    ------
    ValueError
        When the JSON is not an object, has no metrics (the run did not reach its measuring phase), lacks a
        field, has a field of the wrong type or a negative count, or has no sink sample (recorded before the sink
        was sampled).
    """
    from pydantic import ValidationError

    from cluster.config import explain_validation

    if not isinstance(summary, dict):
        raise ValueError(f"expected {RUN_JSON}, not a JSON {type(summary).__name__}")
    m = summary.get("metrics")
    if not isinstance(m, dict) or not m.get("cameras") or not m.get("frames_decoded_per_s"):
        raise ValueError("the run's JSON has no metrics: run `ssz run --detect truth --json` long enough for every "
                         "camera to start")
    if m.get("sink_cpu_pct") is None:
        raise ValueError("the run's JSON has no sink_cpu_pct (recorded before the sink was sampled): run it again")
    try:
        cams = int(m["cameras"])
        return MeasuredRun(
            cameras=cams, fps=round(m["frames_decoded_per_s"] / cams, 3),
            processed_ratio=round(min(1.0, summary["frames_processed"] / max(1, summary["frames_decoded"])), 4),
            wall_s=m["wall_s"], load_avg_1m=m.get("load_avg_1m", 0.0),
            shard_cores=round(m["cpu_pct_per_camera_shard"] / 100 * cams, 4),
            reader_cores=round(m["cpu_pct_per_camera_reader"] / 100 * cams, 4),
            sink_cores=round(m["sink_cpu_pct"] / 100, 4),
            control_plane_cores=round(m["control_plane_cpu_pct"] / 100, 4),
            kept_up=summary.get("starved", 1) == 0 and summary.get("fps_decoded_min", 0.0) >= 0.9 * m[
                "frames_decoded_per_s"] / cams)
    except KeyError as e:
        raise ValueError(f"the run's JSON lacks {e}: pass the output of `ssz run --detect truth --json`") from e
    except ValidationError as e:
        raise ValueError(f"the run's JSON has a wrong value ({explain_validation(e)}): expected {RUN_JSON}") from e
    except (TypeError, ValueError) as e:  # a string where a number belongs ("cameras": "many")
        raise ValueError(f"the run's JSON has a field of the wrong type ({e}): expected {RUN_JSON}") from e


def _read_json(path: Path, expected: str) -> Any:
    """The JSON document in ``path``; a ValueError naming the file and ``expected`` when it is missing, a
    directory, unreadable or not JSON."""
    import json

    if path.is_dir():
        raise ValueError(f"{path} is a directory: expected {expected}")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ValueError(f"{path}: file not found: expected {expected}") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not readable JSON ({e}): expected {expected}") from e


def load_run(path: Path) -> dict[str, Any]:
    """A recorded run's JSON (``ssz run --detect truth --json``), checked: what ``--validate`` and ``--from-run``
    read.

    Returns
    -------
    dict
        The run's JSON object (a ``RunSummary``), whose metrics :func:`measured_run` reads.

    Raises
    ------
    ValueError
        Naming the file: missing, a directory, not JSON, not an object, or not a run :func:`measured_run` reads.
    """
    data = _read_json(path, RUN_JSON)
    try:
        measured_run(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
    return data


class StageCosts(BaseModel):
    """Measured costs of each stage on one machine (milliseconds of one core unless said otherwise)."""

    model_config = ConfigDict(extra="forbid")

    machine: str = Field(description="where it was measured (host, CPU model)")
    cpus: int = Field(ge=1, description="logical CPUs of that machine")
    device: str = Field(default="cpu", description="device of the model stages (cpu or cuda)")
    load_avg_1m: float = Field(default=0.0, description="load average while measuring (shared machine: noise)")
    decode_ms_per_frame: float = Field(gt=0, description="PyAV decode of one frame at decode_pixels")
    decode_pixels: int = Field(gt=0, description="pixels per frame of the decode measurement")
    draw_ms_per_frame: float = Field(default=0.0, ge=0, description="a synthetic camera drawing one frame "
                                                                    "(the simulated 'decode')")
    draw_pixels: int = Field(default=320 * 240, gt=0, description="pixels per synthetic frame")
    gate_ms_per_frame: float = Field(gt=0, description="motion gate on one decoded frame (analysis at 160x90)")
    gate_synthetic_ms_per_frame: float | None = Field(default=None, gt=0, description="motion gate on one "
                                                                                      "synthetic frame")
    prepare_ms_per_frame: float = Field(ge=0, description="downsize a sampled frame to the detector width")
    reader_ms_per_frame: float | None = Field(default=None, ge=0, description=(
        "a simulated camera's reader thread in a shard actor (draw, gate, sample, prepare, wake-ups), CPU per "
        "decoded frame, from the calibration runs; None = not calibrated"))
    shard_ms_per_processed_frame: float | None = Field(default=None, ge=0, description=(
        "a shard actor beyond its readers, CPU per processed (gated and sampled) frame: batching, detector call "
        "(the truth detector in the calibration), tracking, confirmation, Ray; from the calibration runs"))
    shard_ms_per_camera_s: float | None = Field(default=None, ge=0, description=(
        "a shard actor beyond its readers, CPU ms per camera per second whatever the frame rate: health polls, "
        "resume-state saves, status answers, Ray's worker threads; from the calibration runs"))
    sink_cores: float | None = Field(default=None, ge=0, description="the alert sink actor, fixed cores "
                                                                     "(calibration runs)")
    sink_ms_per_camera_s: float | None = Field(default=None, ge=0, description=(
        "the alert sink actor, CPU ms per camera per second (events, alerts, health; calibration runs)"))
    face_detect_ms_per_frame: float | None = Field(default=None, ge=0, description="MTCNN on one 640x360 frame")
    face_embed_ms_per_face: float | None = Field(default=None, ge=0, description="align + dlib embed + watchlist "
                                                                                 "search per face")
    plate_ms_per_frame: float | None = Field(default=None, ge=0, description="plate localise + OCR per frame")
    batch: int = Field(default=8, ge=1, description="batch size of the model measurements")
    mem_mb_per_camera: float | None = Field(default=None, ge=0, description="shard memory per camera, measured")
    control_plane_cores: float | None = Field(default=None, ge=0, description=(
        "Ray's system processes (GCS, raylet, agents), fixed cores (calibration runs)"))
    control_plane_ms_per_camera_s: float | None = Field(default=None, ge=0, description=(
        "Ray's system processes, CPU ms per camera per second (calibration runs)"))
    calibration: list[MeasuredRun] = Field(default=[], description=(
        "the short `ssz run --detect truth` runs the shard, sink and control-plane terms were fitted on"))
    gpu: dict[str, float] | None = Field(default=None, description=(
        "the model stages on a GPU (ms per item, same keys as above); None = no GPU measured"))


class Workload(BaseModel):
    """What a city asks of the cluster."""

    model_config = ConfigDict(extra="forbid")

    name: str
    cctv: int = Field(ge=0, description="CCTV cameras (faces)")
    plate: int = Field(ge=0, description="plate cameras")
    fps: float = Field(gt=0, description="camera frame rate decoded")
    sample_fps: float = Field(gt=0, description="frames per second per CCTV camera sent to the face model")
    plate_sample_fps: float = Field(gt=0, description="frames per second per plate camera sent to OCR")
    gate_pass: float = Field(default=0.35, gt=0, le=1, description="share of frames the motion gate lets through")
    faces_per_frame: float = Field(default=0.5, ge=0, description="faces per sampled CCTV frame")
    pixels: int = Field(default=1920 * 1080, gt=0, description="decoded pixels per frame (1080p streams)")
    synthetic: bool = Field(default=False, description="simulated cameras: draw instead of decode, no model")


class NodeType(BaseModel):
    """One machine of the cluster."""

    model_config = ConfigDict(extra="forbid")

    cores: int = Field(default=32, ge=1)
    gpus: int = Field(default=0, ge=0)
    utilisation: float = Field(default=0.7, gt=0, le=1, description="share of cores planned for (headroom)")
    cameras_per_shard: int = Field(default=32, ge=1)
    cores_per_model_replica: int = Field(default=4, ge=1)


class StageLine(BaseModel):
    """One stage of the plan."""

    stage: str
    items_per_s: float = Field(description="frames, faces or plates per second, whole city")
    ms_per_item: float | None
    cores: float = Field(description="CPU cores it needs")
    gpus: float = Field(default=0.0, description="GPUs it needs (GPU costs measured)")
    share: float = Field(default=0.0, description="of all cores")


class CapacityPlan(BaseModel):
    """What ``ssz plan capacity`` prints."""

    workload: Workload
    node: NodeType
    stages: list[StageLine]
    cores: float
    gpus: float
    nodes: int
    shards: int
    shards_per_node: int
    face_replicas: int
    plate_replicas: int
    memory_gb: float | None
    notes: list[str]


def plan(costs: StageCosts, w: Workload, node: NodeType | None = None) -> CapacityPlan:
    """The cores, GPUs, nodes and Ray placement for workload ``w`` (see the module docstring).

    Raises
    ------
    ValueError
        When the workload needs a model stage whose cost was not measured.
    """
    node = node or NodeType()
    cams = w.cctv + w.plate
    notes: list[str] = []
    s_face = min(w.sample_fps, w.fps * w.gate_pass)
    s_plate = min(w.plate_sample_fps, w.fps * w.gate_pass)
    frames = cams * w.fps
    lines: list[StageLine] = []

    def add(stage: str, items: float, ms: float | None, gpu_ms: float | None = None) -> None:
        if ms is None:
            raise ValueError(f"stage {stage!r} has no measured cost: run `ssz bench stages` (with the models)")
        if gpu_ms is not None:
            lines.append(StageLine(stage=stage, items_per_s=round(items, 2), ms_per_item=gpu_ms, cores=0.0,
                                   gpus=items * gpu_ms / 1000))
        else:
            lines.append(StageLine(stage=stage, items_per_s=round(items, 2), ms_per_item=ms, cores=items * ms / 1000))

    processed = w.cctv * s_face + w.plate * s_plate
    if w.synthetic and costs.reader_ms_per_frame is not None:
        # simulated cameras: their reader threads (draw, gate, sample, prepare) as measured in a shard actor
        add("readers (draw, gate, sample, prepare)", frames, costs.reader_ms_per_frame)
    else:
        if w.synthetic:
            add("draw (simulated decode)", frames, costs.draw_ms_per_frame * w.pixels / costs.draw_pixels)
        else:
            add("decode", frames, costs.decode_ms_per_frame * w.pixels / costs.decode_pixels)
            if w.pixels != costs.decode_pixels:
                notes.append(f"decode scaled by pixels from the measured {costs.decode_pixels} px to {w.pixels} px")
        add("motion gate", frames, costs.gate_synthetic_ms_per_frame or costs.gate_ms_per_frame if w.synthetic
            else costs.gate_ms_per_frame)
        add("sample + prepare", processed, costs.prepare_ms_per_frame)
    if costs.shard_ms_per_processed_frame is None or costs.shard_ms_per_camera_s is None:
        notes.append("shard, sink and control-plane overheads not calibrated: run `ssz bench stages` with its "
                     "calibration runs (needs the object store and Ray)")
    else:
        add("shard per processed frame (batch, detector call, tracking, Ray)", processed,
            costs.shard_ms_per_processed_frame)
        add("shard per camera-second (health, checkpoints, status, Ray worker)", cams,
            costs.shard_ms_per_camera_s)
    if costs.sink_cores is not None and costs.sink_ms_per_camera_s is not None:
        add("alert sink per camera-second", cams, costs.sink_ms_per_camera_s)
        lines[-1].cores += costs.sink_cores
    if not w.synthetic:
        gpu = costs.gpu or {}
        if w.cctv:
            add("face detect (MTCNN)", w.cctv * s_face, costs.face_detect_ms_per_frame,
                gpu.get("face_detect_ms_per_frame") if node.gpus else None)
            add("face embed (dlib)", w.cctv * s_face * w.faces_per_frame, costs.face_embed_ms_per_face,
                gpu.get("face_embed_ms_per_face") if node.gpus else None)
        if w.plate:
            add("plate read (localise + OCR)", w.plate * s_plate, costs.plate_ms_per_frame,
                gpu.get("plate_ms_per_frame") if node.gpus else None)
        if node.gpus and not costs.gpu:
            raise ValueError("the node type has GPUs but no GPU costs were measured (`ssz bench stages --device "
                             "cuda` on a GPU machine); plan with --gpus 0")
    return _finish(costs, w, node, lines, notes)


def _finish(costs: StageCosts, w: Workload, node: NodeType, lines: list[StageLine], notes: list[str]) -> CapacityPlan:
    """Totals, nodes, placement and shares of the stage lines."""
    cams = w.cctv + w.plate
    cores = sum(x.cores for x in lines)
    cams_cp = cams * (costs.control_plane_ms_per_camera_s or 0.0) / 1000
    cp = (costs.control_plane_cores or 0.0) + cams_cp
    if costs.control_plane_cores is None:
        notes.append("control plane not measured")
    gpus = sum(x.gpus for x in lines)
    per_node = node.cores * node.utilisation
    nodes = max(1, math.ceil((cores + cp) / per_node))
    if node.gpus:
        nodes = max(nodes, math.ceil(gpus / (node.gpus * node.utilisation)))
    lines.append(StageLine(stage="control plane (GCS, raylet)", items_per_s=float(cams),
                           ms_per_item=costs.control_plane_ms_per_camera_s, cores=cp))
    total = cores + cp
    for x in lines:
        x.share = round(x.cores / total, 4) if total else 0.0
        x.cores = round(x.cores, 3)
        x.gpus = round(x.gpus, 3)
    shards = math.ceil(cams / node.cameras_per_shard) if cams else 0
    model_cores = {k: sum(x.cores for x in lines if x.stage.startswith(k)) for k in ("face", "plate")}
    return CapacityPlan(
        workload=w, node=node, stages=lines, cores=round(total, 2), gpus=round(gpus, 2), nodes=nodes, shards=shards,
        shards_per_node=math.ceil(shards / nodes) if nodes else 0,
        face_replicas=math.ceil(model_cores["face"] / node.cores_per_model_replica) if not node.gpus else
        max(1, math.ceil(sum(x.gpus for x in lines if x.stage.startswith("face")) / node.utilisation)),
        plate_replicas=math.ceil(model_cores["plate"] / node.cores_per_model_replica) if not node.gpus else
        max(1, math.ceil(sum(x.gpus for x in lines if x.stage.startswith("plate")) / node.utilisation)),
        memory_gb=round(cams * costs.mem_mb_per_camera / 1024, 1) if costs.mem_mb_per_camera else None,
        notes=notes)


def city_workload(city_id: str, **over: Any) -> Workload:
    """The workload of a bundled city from its config (cameras, frame rate, sample rates)."""
    from cluster.config import load_city

    c = load_city(city_id)
    kw: dict[str, Any] = {"name": c.id, "cctv": c.cameras.count, "plate": c.cameras.plate_count,
                          "fps": c.cameras.fps, "sample_fps": c.cameras.sample_fps,
                          "plate_sample_fps": max(c.cameras.sample_fps, c.cameras.plate_sample_fps)}
    kw.update({k: v for k, v in over.items() if v is not None})
    return Workload(**kw)


def national_workload(stations: int = 100, **over: Any) -> Workload:
    """The programme's next phase: ``stations`` Safety Zones at Hat Yai's camera density (617 CCTV + 48 plate)."""
    hy = city_workload("hatyai")
    return hy.model_copy(update={"name": f"national-{stations}", "cctv": hy.cctv * stations,
                                 "plate": hy.plate * stations, **{k: v for k, v in over.items() if v is not None}})


def costs_path() -> Path:
    """Where ``ssz bench stages`` writes the measured costs (``$SSZ_HOME/bench/stage_costs.json``)."""
    from cluster.state import state_dir

    return state_dir("bench") / "stage_costs.json"


def load_costs(path: Path | None = None) -> StageCosts:
    """The measured stage costs: ``path`` (``--costs``), else what ``ssz bench stages`` wrote (:func:`costs_path`).

    Raises
    ------
    FileNotFoundError
        When nothing was measured yet and no ``path`` was given (the message says which command measures them).
    ValueError
        Naming the file: missing, a directory, not JSON, a run's JSON instead of costs (the message points to
        ``--validate``), or costs this version cannot read (written by an older one: re-measure).
    """
    from pydantic import ValidationError

    from cluster.config import explain_validation

    p = path or costs_path()
    again = "re-measure them with `ssz bench stages`"
    if path is None and not p.exists():
        raise FileNotFoundError(f"no measured stage costs at {p}: run `ssz bench stages` first, or pass the costs "
                                "it wrote elsewhere with --costs FILE")
    data = _read_json(p, "the stage costs JSON `ssz bench stages` writes")
    if isinstance(data, dict) and ("metrics" in data or "frames_decoded" in data):
        raise ValueError(f"{p} is not stage costs: this looks like an `ssz run --json` output: pass it to "
                         "--validate (and the costs with --costs, or none for the measured ones)")
    if not isinstance(data, dict):
        raise ValueError(f"stage costs file {p} holds a JSON {type(data).__name__}, not the object `ssz bench "
                         f"stages` writes: {again}")
    try:
        return StageCosts.model_validate(data)
    except ValidationError as e:
        raise ValueError(f"stage costs file {p} does not match this version's stage costs "
                         f"({explain_validation(e).replace(' (check its spelling against cluster/config.py)', '')}): "
                         f"written by an older version? {again}") from e


PLOT_FORMATS = (".png", ".svg", ".pdf")


def check_plot_path(out: Path) -> None:
    """Refuse a plot path :func:`plot` cannot write, before any work: check it first.

    Raises
    ------
    ValueError
        When the suffix is not one of :data:`PLOT_FORMATS`, or the folder does not exist (it is not created)
        or is not writable.
    """
    import os

    if out.suffix.lower() not in PLOT_FORMATS:
        raise ValueError(f"--plot {out}: the plot is written as {', '.join(x[1:] for x in PLOT_FORMATS)}: end the "
                         "file name with one of them")
    folder = out.parent
    if not folder.is_dir():
        raise ValueError(f"--plot {out}: folder {folder} does not exist: create it first or choose another path")
    if not os.access(folder, os.W_OK) or out.is_dir():
        raise ValueError(f"--plot {out}: cannot write there: choose another path")


def plot(plans: list[CapacityPlan], out: Path) -> Path:
    """A stacked bar chart of the cores per stage of each plan (format from the suffix: :data:`PLOT_FORMATS`).

    Raises
    ------
    OSError
        When the file cannot be written (:func:`check_plot_path` checks what it can beforehand).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(dict.fromkeys(x.stage for p in plans for x in p.stages))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bottom = [0.0] * len(plans)
    for st in stages:
        vals = [next((x.cores for x in p.stages if x.stage == st), 0.0) for p in plans]
        ax.bar([p.workload.name for p in plans], vals, bottom=bottom, label=st)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_yscale("log")
    ax.set_ylabel("CPU cores (log)")
    ax.set_title("Cores per stage")
    ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return out


class Validation(BaseModel):
    """The model's prediction of a measured ``ssz run --detect truth`` on this machine, against what it measured.

    The run gives only the workload (cameras, frame rate, share of frames processed); every cost comes from
    ``ssz bench stages`` (its calibration runs are listed, and must not include the validated run).
    """

    run_cameras: int
    run_fps: float = Field(description="frames decoded per camera per second in the run")
    run_processed_ratio: float = Field(description="frames processed / frames decoded in the run (a workload input)")
    run_load_avg_1m: float = Field(description="the machine's 1-minute load average at the run's end")
    predicted_cores: float = Field(description="shards + alert sink + control plane, predicted (cores)")
    measured_cores: float = Field(description="the same processes' CPU in the run (cores)")
    error_pct: float = Field(description="(predicted - measured) / measured, % (the target is within +-20 %)")
    parts: dict[str, dict[str, float | None]] = Field(description=(
        "readers, shards (readers included), sink, control plane: predicted and measured cores and error %"))
    predicted_max_cameras: int = Field(description=(
        "cameras this machine carries at the run's frame rate and processed ratio within `utilisation` of its "
        "cores, by the model"))
    utilisation: float = Field(description="share of this machine's cores planned for")
    run_kept_up: bool = Field(description="the run decoded at its cameras' rate (no starved camera, slowest camera "
                                          ">= 90 % of the rate): its cameras were within the machine's capacity")
    calibration: list[MeasuredRun] = Field(description="the runs the overhead terms were fitted on")
    independent: bool = Field(description="no calibration run had the validated run's cameras and frame rate")


def _run_workload(cams: int, fps: float, ratio: float, costs: StageCosts) -> Workload:
    """A simulated run's workload: ``ratio`` of the frames processed (sample rate = frame rate x ratio)."""
    return Workload(name="this machine", cctv=cams, plate=0, fps=fps, sample_fps=fps, plate_sample_fps=fps,
                    gate_pass=max(1e-6, min(1.0, ratio)), synthetic=True, pixels=costs.draw_pixels)


def _parts(p: CapacityPlan) -> dict[str, float]:
    """Predicted cores of the processes a run measures: readers, shards (with readers), sink, control plane."""
    def of(*prefixes: str) -> float:
        return sum(x.cores for x in p.stages if x.stage.startswith(prefixes))

    return {"readers": of("readers", "draw", "motion", "sample"), "shards": of("readers", "draw", "motion", "sample",
                                                                                  "shard"),
            "sink": of("alert sink"), "control_plane": of("control plane")}


def validate(costs: StageCosts, run: dict[str, Any], utilisation: float = 0.9) -> Validation:
    """Predict the CPU of a measured ``ssz run --detect truth --json`` (``run``) on this machine from ``costs``.

    Measured = the shard processes + the alert sink's process + Ray's system processes, between the run's two
    samples (:class:`cluster.scale.ScaleMetrics`); predicted = :func:`plan` of the run's workload (cameras,
    frame rate, processed share) with the calibrated stage costs.

    Raises
    ------
    ValueError
        When the run has no metrics, decoded nothing or has no sink sample, or the costs were not calibrated.
    """
    if costs.shard_ms_per_processed_frame is None or costs.reader_ms_per_frame is None or not costs.calibration:
        raise ValueError("the stage costs were not calibrated: run `ssz bench stages` (its calibration runs need "
                         "the object store and Ray)")
    r = measured_run(run)
    cams, fps, ratio = r.cameras, r.fps, r.processed_ratio
    pred = _parts(plan(costs, _run_workload(cams, fps, ratio, costs), NodeType(cores=costs.cpus)))
    meas = {"readers": r.reader_cores, "shards": r.shard_cores, "sink": r.sink_cores,
            "control_plane": r.control_plane_cores}
    total_p = pred["shards"] + pred["sink"] + pred["control_plane"]
    total_m = meas["shards"] + meas["sink"] + meas["control_plane"]

    def err(a: float, b: float) -> float | None:
        return round(100 * (a - b) / b, 1) if b > 0 else None

    def total(n: int) -> float:  # linear in the cameras at this frame rate and processed ratio
        q = _parts(plan(costs, _run_workload(n, fps, ratio, costs), NodeType(cores=costs.cpus)))
        return q["shards"] + q["sink"] + q["control_plane"]

    fixed, per_cam = total(0), (total(1000) - total(0)) / 1000
    max_cams = max(0, math.floor((costs.cpus * utilisation - fixed) / per_cam)) if per_cam > 0 else 0
    return Validation(
        run_cameras=cams, run_fps=round(fps, 3), run_processed_ratio=round(ratio, 4),
        run_load_avg_1m=r.load_avg_1m, predicted_cores=round(total_p, 3),
        measured_cores=round(total_m, 3), error_pct=err(total_p, total_m) or 0.0,
        parts={k: {"predicted": round(pred[k], 3), "measured": round(meas[k], 3), "error_pct": err(pred[k], meas[k])}
               for k in pred},
        predicted_max_cameras=max_cams, utilisation=utilisation, run_kept_up=r.kept_up,
        calibration=costs.calibration,
        independent=not any(c.cameras == cams and abs(c.fps - fps) < 0.05 * fps for c in costs.calibration))
