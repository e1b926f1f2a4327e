"""The ``ssz`` command line: the main job (``demo``), the store, the Ray cluster and city configs."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from cluster import config as cfg
from twin.objectstore import StoreError

app = typer.Typer(help="Smart Safety Zone platform.", no_args_is_help=True, add_completion=False)
store_app = typer.Typer(help="The S3 object store (embedded SeaweedFS on 127.0.0.1, or SSZ_S3_* for MinIO).",
                        no_args_is_help=True)
cluster_app = typer.Typer(help="The Ray cluster (local head on 127.0.0.1, or SSZ_RAY_ADDRESS).",
                          no_args_is_help=True)
config_app = typer.Typer(help="City and zone configurations.", no_args_is_help=True)
api_app = typer.Typer(help="Face and plate recognition behind the token-protected HTTP API (Ray Serve).",
                      no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(cluster_app, name="cluster")
app.add_typer(config_app, name="config")
app.add_typer(api_app, name="api")


def _register_subapps() -> None:
    from cluster.cli_audit import app as audit_app
    from cluster.cli_bench import app as bench_app
    from cluster.cli_bench import quality_app
    from cluster.cli_eval import eval_command
    from cluster.cli_lab import lab_command
    from cluster.cli_map import map_command
    from cluster.cli_plan import app as plan_app
    from cluster.cli_twin import app as twin_app

    twin_app.command("map")(map_command)
    app.add_typer(twin_app, name="twin")
    app.add_typer(bench_app, name="bench")
    app.add_typer(quality_app, name="quality")
    app.add_typer(plan_app, name="plan")
    app.add_typer(audit_app, name="audit")
    app.command("eval")(eval_command)
    app.command("lab")(lab_command)


_register_subapps()


@app.callback()
def _setup() -> None:
    """Smart Safety Zone platform."""
    import logging

    from serve.redact import install_log_redaction

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # connection retries while a server starts are expected
    install_log_redaction()  # no URL credentials in any log line of any command

console = Console()
err = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(msg: str | Exception, code: int = 2) -> None:
    """Print what is wrong (a pydantic error as field: reason) on stderr and exit with ``code``."""
    if isinstance(msg, ValidationError):
        msg = cfg.explain_validation(msg)
    err.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(code)


def _emit(model: BaseModel, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(model.model_dump_json(indent=2) + "\n")
    else:
        console.print_json(model.model_dump_json())


@store_app.command("up")
def store_up(port: Annotated[int | None, typer.Option(help="S3 port (others follow it).")] = None,
             retention_days: Annotated[int | None, typer.Option(
                 help="Evidence COMPLIANCE retention in days (default SSZ_EVIDENCE_RETENTION_DAYS or 365); an "
                      "existing longer retention is never lowered.")] = None,
             as_json: JsonOpt = False) -> None:
    """Start the embedded S3 store on 127.0.0.1 and create the twin/evidence/models buckets."""
    from cluster import store

    try:
        _emit(store.up(port=port, evidence_retention_days=retention_days), as_json)
    except StoreError as e:
        _fail(str(e))


@store_app.command("down")
def store_down(as_json: JsonOpt = False) -> None:
    """Stop the embedded S3 store (its data stays in the state folder)."""
    from cluster import store

    _emit(store.down(), as_json)


@store_app.command("status")
def store_status(as_json: JsonOpt = False) -> None:
    """Report the store: endpoint, process, buckets with versioning and object lock."""
    from cluster import store

    try:
        st = store.status()
    except StoreError as e:
        _fail(str(e))
        return
    _emit(st, as_json)
    if st.error:
        raise typer.Exit(1)


@cluster_app.command("up")
def cluster_up(port: Annotated[int, typer.Option(help="GCS port of the head.")] = 26379,
               num_cpus: Annotated[int | None, typer.Option()] = None,
               num_gpus: Annotated[int | None, typer.Option()] = None, as_json: JsonOpt = False) -> None:
    """Start a local Ray head bound to 127.0.0.1 (no-op when it already runs)."""
    from cluster import raycluster

    try:
        _emit(raycluster.up(port=port, num_cpus=num_cpus, num_gpus=num_gpus), as_json)
    except raycluster.RayError as e:
        _fail(str(e))


@cluster_app.command("down")
def cluster_down(as_json: JsonOpt = False) -> None:
    """Stop the local Ray head started by `ssz cluster up`."""
    from cluster import raycluster

    _emit(raycluster.down(), as_json)


@cluster_app.command("status")
def cluster_status(address: Annotated[str | None, typer.Option(help="Ray address to inspect.")] = None,
                   as_json: JsonOpt = False) -> None:
    """Report the nodes and resources of the cluster in use."""
    from cluster import raycluster

    st = raycluster.status(address)
    _emit(st, as_json)
    if not st.running:
        raise typer.Exit(1)


@config_app.command("list")
def config_list() -> None:
    """List the bundled cities with their camera counts."""
    t = Table("id", "station", "zone km²", "cameras", "plate cams", "graph")
    for cid in cfg.list_cities():
        c = cfg.load_city(cid)
        t.add_row(c.id, c.station_th, f"{c.zone.area_km2:g}", str(c.cameras.count), str(c.cameras.plate_count),
                  c.street_graph.kind)
    console.print(t)


@config_app.command("validate")
def config_validate(paths: Annotated[list[str], typer.Argument(help="City ids or YAML paths.")]) -> None:
    """Validate city configs; a bad file is reported with its field and the reason."""
    bad = 0
    for p in paths:
        try:
            c = cfg.load_city(p)
            console.print(f"[green]ok[/] {cfg.city_path(p)}: {c.id}, {c.camera_count} cameras")
        except cfg.ConfigError as e:
            bad += 1
            err.print(f"[red]invalid[/] {e}")
    if bad:
        raise typer.Exit(1)


@config_app.command("show")
def config_show(city: str) -> None:
    """Print a city's validated configuration as JSON."""
    try:
        console.print_json(json.dumps(cfg.load_city(city).model_dump(mode="json"), ensure_ascii=False))
    except cfg.ConfigError as e:
        _fail(str(e))


def _verified_audits() -> None:
    """Refuse to start when an audit log does not verify (a torn tail is repaired first)."""
    from cluster import audits, store

    try:
        audits.require_verified(store.open_store())
    except audits.AuditTampered as e:
        _fail(e)


@api_app.command("up")
def api_up(host: Annotated[str, typer.Option(help="Bind address; keep 127.0.0.1 unless behind a proxy.")] = "127.0.0.1",
           port: Annotated[int, typer.Option()] = 8000,
           max_batch_size: Annotated[int, typer.Option(help="Serve dynamic batch size.")] = 8,
           num_gpus: Annotated[float, typer.Option(help="GPUs per face replica (0 on CPU machines).")] = 0.0,
           as_json: JsonOpt = False) -> None:
    """Deploy the face, plate and API apps on the cluster (starting the store and a local Ray head if none
    runs), after `ssz audit verify` passes."""
    from cluster import raycluster, serving, store

    try:
        store.up()
        _verified_audits()
        if raycluster.known_address() is None:
            raycluster.up()
        raycluster.connect()
        _emit(serving.up(host=host, port=port, max_batch_size=max_batch_size, num_gpus=num_gpus), as_json)
    except (raycluster.RayError, StoreError, ValueError) as e:
        _fail(str(e))


@api_app.command("down")
def api_down() -> None:
    """Remove the API application from the cluster (the cluster keeps running)."""
    from cluster import raycluster, serving

    if raycluster.known_address() is None:
        _fail("no cluster recorded: nothing to take down")
    raycluster.connect()
    serving.down()
    console.print("api: removed")


@api_app.command("token")
def api_token(user: Annotated[str, typer.Option(help="User the token belongs to (audited as api:<user>).")],
              role: Annotated[str | None, typer.Option(
                  help="admin | supervisor | operator | analyst | device (needed unless --revoke).")] = None,
              revoke: Annotated[bool, typer.Option(help="Revoke the user's token instead.")] = False,
              reason: Annotated[str, typer.Option(help="Why (audited), with --revoke.")] = "") -> None:
    """Issue (or rotate) a user's API token with a role and print it once; the old token stops working within
    seconds, no redeploy. Only a keyed hash is stored. --revoke removes the user's token."""
    from cluster import serving, store
    from serve.auth import AuthError

    try:
        store.up()
        if revoke:
            serving.revoke_token(user, reason)
            err.print(f"revoked the token of {user}")
            return
        if role is None:
            _fail("give --role admin|supervisor|operator|analyst|device (or --revoke)")
            return
        sys.stdout.write(serving.issue_token(user, role) + "\n")
    except (AuthError, StoreError, ValueError, LookupError) as e:
        _fail(e)


def _status_table(stats: list[dict]) -> Table:
    t = Table("shard", "node", "camera", "health", "fps", "gate pass", "sampled", "dropped", "detections", "alerts",
              title="camera pipeline")
    for sh in stats:
        if sh.get("error"):
            t.add_row(sh["shard_id"], "", "", f"[red]{sh['error']}[/]", *[""] * 6)
        for c in sh["cameras"]:
            t.add_row(sh["shard_id"], (sh.get("node_id") or "")[:8], c["camera_id"], c["health"],
                      f"{c['fps_decoded']:.1f}", f"{c['gate_pass_ratio']:.2f}", str(c["sampled"]), str(c["dropped"]),
                      str(c["detections"]), str(c["alerts"]))
    return t


@app.command("run")
def run_cmd(city: Annotated[str, typer.Option(help="Bundled city id or path to a city YAML.")] = "hatyai",
            cameras: Annotated[int | None, typer.Option(help="First N face cameras (this 2-core machine: ~8).")] = 8,
            plate_cameras: Annotated[int | None, typer.Option(help="First N plate cameras.")] = 2,
            source: Annotated[str, typer.Option(help="sim | file (vtest.avi looped) | rtsp")] = "sim",
            url_template: Annotated[str | None, typer.Option(help="rtsp: rtsp://nvr.internal/{camera_id}")] = None,
            duration: Annotated[float, typer.Option(help="Seconds to run (0 = until Ctrl-C).")] = 60.0,
            detect: Annotated[str, typer.Option(help="faces (Serve face app) | none")] = "faces",
            as_json: JsonOpt = False) -> None:
    """Run the city's camera pipeline on the cluster: shards, face model, alert sink; prints status."""
    from cluster import pipeline, raycluster, store

    try:
        run_cfg = pipeline.RunConfig(city=city, cameras=cameras, plate_cameras=plate_cameras, source=source,
                                     url_template=url_template, duration_s=duration, detect=detect)
        store.up()
        _verified_audits()
        if raycluster.known_address() is None:
            raycluster.up()  # a persistent head, so `ssz status` can look from another terminal
        raycluster.connect()
        summary = pipeline.run(run_cfg, report=None if as_json else (lambda st: console.print(_status_table(st))))
    except (cfg.ConfigError, StoreError, ValueError, raycluster.RayError) as e:
        _fail(e)
        return
    _emit(summary, as_json)


@app.command("status")
def status_cmd(as_json: JsonOpt = False) -> None:
    """Per-camera fps, gate ratio, dropped frames, shard placement and camera health of the running pipeline."""
    from cluster import pipeline, raycluster

    if raycluster.known_address() is None:
        _fail("no cluster recorded: start the pipeline with `ssz run` (or set SSZ_RAY_ADDRESS)")
    raycluster.connect()
    stats = pipeline.status()
    if as_json:
        sys.stdout.write(json.dumps(stats, indent=2, default=str) + "\n")
    elif not stats:
        console.print("no camera shards are running")
    else:
        console.print(_status_table(stats))


@app.command("demo")
def demo(city: Annotated[str, typer.Option(help="Bundled city id or path to a city YAML.")] = "hatyai",
         out: Annotated[str | None, typer.Option(help="Output folder (default: <state>/out/<city>).")] = None,
         face_cameras: Annotated[int, typer.Option(help="Zone CCTV cameras rendered and streamed live (the rest "
                                                        "of the city is ground truth only).")] = 4,
         plate_cameras: Annotated[int, typer.Option(help="Plate cameras rendered and streamed live.")] = 2,
         stream_s: Annotated[float, typer.Option(help="Simulated footage per rendered camera (s).")] = 60.0,
         seed: Annotated[int, typer.Option(help="Scenario seed.")] = 0,
         quick: Annotated[bool, typer.Option(help="Only store, Ray, street graph and registry (no models, no "
                                                  "simulation).")] = False,
         as_json: JsonOpt = False) -> None:
    """The main job on the embedded default: store, local Ray, the city's twin, the recognition models, a
    simulated day streamed through the camera shards, alerts in the twin, a map, an evaluation and a summary."""
    from cluster.demo import run_demo

    try:
        summary = run_demo(city, out=out, console=err if as_json else console, quick=quick,
                           face_cameras=face_cameras, plate_cameras=plate_cameras, stream_s=stream_s, seed=seed)
    except (cfg.ConfigError, StoreError, ValueError) as e:
        _fail(e)
        return
    if as_json:
        sys.stdout.write(summary.model_dump_json(indent=2) + "\n")


if __name__ == "__main__":
    app()
