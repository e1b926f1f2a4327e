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
* ``sample+prepare``: s x downsize; ``shard overhead``: r x the measured per-frame cost of threads, queues,
  tracking, stats and Ray in a running shard (from the city-scale run), if measured;
* ``face detect``: s x MTCNN per frame; ``face embed``: s x faces per frame x dlib per face;
* ``plate read``: s x localise + OCR per frame (plate cameras);
* ``control plane``: the measured cores of Ray's GCS and raylet.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    synthetic_shard_ms_per_frame: float | None = Field(default=None, ge=0, description=(
        "one shard of synthetic cameras with the truth detector in one process (no Ray), CPU per frame"))
    synthetic_reader_ms_per_frame: float | None = Field(default=None, ge=0, description=(
        "of which the cameras' reader threads (draw, gate, sample, prepare, wake-ups)"))
    shard_overhead_ms_per_frame: float | None = Field(default=None, ge=0, description=(
        "what a running shard spends per decoded frame beyond the stages (threads, queues, tracking, stats, "
        "Ray), from a city-scale run; None = not measured"))
    face_detect_ms_per_frame: float | None = Field(default=None, ge=0, description="MTCNN on one 640x360 frame")
    face_embed_ms_per_face: float | None = Field(default=None, ge=0, description="align + dlib embed + watchlist "
                                                                                 "search per face")
    plate_ms_per_frame: float | None = Field(default=None, ge=0, description="plate localise + OCR per frame")
    batch: int = Field(default=8, ge=1, description="batch size of the model measurements")
    mem_mb_per_camera: float | None = Field(default=None, ge=0, description="shard memory per camera, measured")
    control_plane_cores: float | None = Field(default=None, ge=0, description="Ray GCS + raylet cores, measured")
    ray_overhead_pct: float | None = Field(default=None, description=(
        "a shard in a Ray actor versus the same stages in one process, % more CPU per frame (ssz bench pipeline)"))
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

    if w.synthetic and costs.synthetic_shard_ms_per_frame is not None:
        # simulated cameras and the truth detector: the whole shard measured in one process, per frame
        rd = costs.synthetic_reader_ms_per_frame or 0.0
        add("readers (draw, gate, sample, prepare)", frames, rd)
        add("dispatch, truth detector, tracking", frames, costs.synthetic_shard_ms_per_frame - rd)
        if costs.ray_overhead_pct is not None:
            add("Ray actor overhead", frames, costs.synthetic_shard_ms_per_frame * costs.ray_overhead_pct / 100)
        return _finish(costs, w, node, lines, notes)
    if w.synthetic:
        add("draw (simulated decode)", frames, costs.draw_ms_per_frame * w.pixels / costs.draw_pixels)
    else:
        add("decode", frames, costs.decode_ms_per_frame * w.pixels / costs.decode_pixels)
        if w.pixels != costs.decode_pixels:
            notes.append(f"decode scaled by pixels from the measured {costs.decode_pixels} px to {w.pixels} px")
    add("motion gate", frames, costs.gate_synthetic_ms_per_frame or costs.gate_ms_per_frame if w.synthetic
        else costs.gate_ms_per_frame)
    sampled = w.cctv * s_face + w.plate * s_plate
    add("sample + prepare", sampled, costs.prepare_ms_per_frame)
    if costs.shard_overhead_ms_per_frame is not None:
        add("shard overhead (threads, tracking, Ray)", frames, costs.shard_overhead_ms_per_frame)
    else:
        notes.append("shard overhead not measured: run `ssz run --detect truth` with `ssz bench stages --from-run`")
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
    cp = costs.control_plane_cores or 0.0
    if costs.control_plane_cores is None:
        notes.append("control plane not measured")
    gpus = sum(x.gpus for x in lines)
    per_node = node.cores * node.utilisation
    nodes = max(1, math.ceil((cores + cp) / per_node))
    if node.gpus:
        nodes = max(nodes, math.ceil(gpus / (node.gpus * node.utilisation)))
    lines.append(StageLine(stage="control plane (GCS, raylet)", items_per_s=0.0, ms_per_item=None, cores=cp))
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
    """The measured stage costs.

    Raises
    ------
    FileNotFoundError
        When nothing was measured yet (the message says which command measures them).
    """
    p = path or costs_path()
    if not p.is_file():
        raise FileNotFoundError(f"no measured stage costs at {p}: run `ssz bench stages` first")
    return StageCosts.model_validate_json(p.read_text())


def plot(plans: list[CapacityPlan], out: Path) -> Path:
    """A stacked bar chart of the cores per stage of each plan (PNG)."""
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
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


class Validation(BaseModel):
    """The model's prediction for a measured run on this machine, against what the run measured."""

    run_cameras: int
    run_fps: float = Field(description="frames decoded per camera per second in the run")
    run_gate_pass: float = Field(description="frames processed / frames decoded in the run")
    predicted_shard_cores: float = Field(description="every shard stage, predicted")
    measured_shard_cores: float = Field(description="the shard processes' CPU in the run")
    error_pct: float = Field(description="(predicted - measured) / measured, %")
    predicted_reader_cores: float = Field(description="the readers' stages (draw/decode, gate, sample, prepare)")
    measured_reader_cores: float = Field(description="the cameras' reader threads in the run")
    reader_error_pct: float
    overhead_from: str = Field(description="where the shard overhead per frame came from (must not be this run)")


def validate(costs: StageCosts, run: dict[str, Any], overhead_from: str) -> Validation:
    """Predict the shard CPU of a measured ``ssz run --detect truth --json`` (``run``) from ``costs``.

    ``costs`` should carry a shard overhead measured on a *different* run (e.g. a small one), so the check is a
    prediction, not a fit.

    Raises
    ------
    ValueError
        When the run has no metrics or decoded nothing.
    """
    m = run.get("metrics")
    if not m or not m.get("frames_decoded_per_s"):
        raise ValueError("the run's JSON has no metrics (run `ssz run --detect truth --json` long enough)")
    cams = int(m["cameras"])
    fps = m["frames_decoded_per_s"] / cams
    gate = min(1.0, run["frames_processed"] / max(1, run["frames_decoded"]))
    w = Workload(name="this machine", cctv=cams, plate=0, fps=fps, sample_fps=fps, plate_sample_fps=fps,
                 gate_pass=gate, synthetic=True, pixels=costs.draw_pixels)
    p = plan(costs, w, NodeType(cores=costs.cpus))
    reader = sum(x.cores for x in p.stages if x.stage.startswith(("readers", "draw", "decode", "motion", "sample")))
    shard = sum(x.cores for x in p.stages if not x.stage.startswith("control plane"))
    meas_shard = m["cpu_pct_per_camera_shard"] / 100 * cams
    meas_reader = m["cpu_pct_per_camera_reader"] / 100 * cams
    return Validation(run_cameras=cams, run_fps=round(fps, 3), run_gate_pass=round(gate, 3),
                      predicted_shard_cores=round(shard, 3), measured_shard_cores=round(meas_shard, 3),
                      error_pct=round(100 * (shard - meas_shard) / meas_shard, 1),
                      predicted_reader_cores=round(reader, 3), measured_reader_cores=round(meas_reader, 3),
                      reader_error_pct=round(100 * (reader - meas_reader) / meas_reader, 1),
                      overhead_from=overhead_from)
