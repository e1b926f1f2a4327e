"""``ssz twin``: build a city's digital twin into the object store, manage its snapshots, draw its map.

``build`` stores the street graph and the registry layers as a first snapshot (:mod:`cluster.citytwin`);
``snapshot`` lists, shows, creates, diffs and prunes snapshots; ``map`` writes the offline kepler.gl map
(:mod:`cluster.citymap`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import pyarrow.parquet as pq
import typer

from cluster.cli.common import USER_ERRORS, CityOpt, fail, print_json, warn
from cluster.config import load_city
from cluster.state import state_dir
from twin.layers import LayerError, TwinState

app = typer.Typer(help="The digital twin: street graph, layers and snapshots in the object store.",
                  no_args_is_help=True, add_completion=False)
snapshot_app = typer.Typer(help="Versioned snapshots of a city's twin.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")

TWIN_ERRORS = (*USER_ERRORS, LayerError)


def _snaps(city: str) -> Any:
    from cluster import store
    from twin.snapshots import SnapshotStore

    return SnapshotStore(store.open_store(), load_city(city).id)


@app.command("build")
def build(city: CityOpt) -> None:
    """Load the street graph, store it as GeoParquet, generate the registry layers and commit a snapshot."""
    from cluster.citytwin import build_twin

    try:
        print_json(build_twin(city))
    except TWIN_ERRORS as e:
        fail(e)


def _summary(m: Any) -> dict[str, Any]:
    return {"id": m.id, "as_of": m.as_of.isoformat(), "created": m.created.isoformat(), "parent": m.parent,
            "author": m.author, "message": m.message, "rows": {n: r.rows for n, r in m.layers.items() if r.rows}}


@snapshot_app.command("list")
def snapshot_list(city: CityOpt) -> None:
    """List the city's snapshots, oldest first."""
    try:
        print_json([_summary(m) for m in _snaps(city).list()])
    except TWIN_ERRORS as e:
        fail(e)


@snapshot_app.command("show")
def snapshot_show(
        city: CityOpt,
        snapshot_id: Annotated[str | None, typer.Option("--id", help="Snapshot id (default: latest).")] = None,
        as_of: Annotated[str | None, typer.Option(help="Time, e.g. '2021-12-01 08:00'.")] = None,
        tz: Annotated[str, typer.Option(help="Time zone of a naive --as-of.")] = "Asia/Bangkok") -> None:
    """Show one snapshot (by id, by time, or the latest): its manifest and objects."""
    try:
        m = _snaps(city).resolve(snapshot_id, as_of, tz)
        print_json({**_summary(m), "objects": {n: r.model_dump() for n, r in m.layers.items()}})
    except TWIN_ERRORS as e:
        fail(e)


@snapshot_app.command("create")
def snapshot_create(city: CityOpt,
                    from_dir: Annotated[Path | None, typer.Option(help="Folder of <layer>.parquet files to add "
                                                                       "to the latest snapshot's layers.")] = None,
                    replace: Annotated[bool, typer.Option(help="Replace layers from --from-dir instead of "
                                                               "appending.")] = False,
                    message: Annotated[str, typer.Option(help="Commit message.")] = "",
                    as_of: Annotated[str | None, typer.Option(help="Time the snapshot describes.")] = None,
                    tz: Annotated[str, typer.Option(help="Time zone of a naive --as-of.")] = "Asia/Bangkok") -> None:
    """Commit a new snapshot: the latest one plus validated layer files (or an unchanged checkpoint)."""
    from twin.schemas import LAYERS

    if from_dir is not None and not from_dir.is_dir():
        fail(f"--from-dir {from_dir}: no such folder: give the folder that holds the <layer>.parquet files")
    if from_dir is not None and not any(from_dir.glob("*.parquet")):
        fail(f"--from-dir {from_dir}: no <layer>.parquet files in it (nothing to add): name them after a layer, "
             f"one of {', '.join(LAYERS)}; leave out --from-dir for an unchanged checkpoint")
    try:
        snaps = _snaps(city)
        head = snaps.latest()
        st = snaps.open(head.id).state() if head else TwinState(snaps.city)
        rejected: dict[str, list[str]] = {}
        if from_dir is not None:
            files = sorted(from_dir.glob("*.parquet"))
            unknown = [f.name for f in files if f.stem not in LAYERS]
            if unknown:
                fail(f"{from_dir}: {unknown} are not layer files: name them <layer>.parquet, one of "
                      f"{', '.join(LAYERS)}")
            for f in files:
                table = pq.read_table(f)
                if replace:
                    st.replace(f.stem, table)
                else:
                    res = st.append_table(f.stem, table)
                    if res.rejected:
                        rejected[f.stem] = [str(r) for r in res.rejected[:20]]
        m = snaps.create(st, message=message, as_of=as_of, tz=tz, author="ssz twin snapshot create")
        print_json({**_summary(m), "rejected": rejected})
    except TWIN_ERRORS as e:
        fail(e)


@app.command("import")
def import_cmd(kind: Annotated[str, typer.Argument(help="gps_pings | qr_scans | risk_points | survey_results")],
               file: Annotated[Path, typer.Argument(help="CSV (UTF-8, TIS-620/cp874, UTF-16) or workbook "
                                                         "(.xlsx, .xls, .ods) file.")],
               city: CityOpt,
               sheet: Annotated[str | None, typer.Option(help="Workbook sheet (name or 0-based number; default: the "
                                                          "first that names the kind's columns).")] = None,
               message: Annotated[str, typer.Option(help="Commit message.")] = "",
               dry_run: Annotated[bool, typer.Option(help="Read and check only; commit nothing.")] = False) -> None:
    """Read a field file (patrol GPS, QR scans, risk points, People Poll) and commit it to the twin."""
    from cluster import store
    from cluster.config import load_city
    from cluster.fieldimport import IMPORT_LAYERS, import_file, read_import_file
    from twin.fieldspecs import InputError

    try:
        if kind not in IMPORT_LAYERS:
            raise InputError(str(file), f"{kind!r} cannot be imported into the twin",
                             f"use one of {', '.join(IMPORT_LAYERS)}")
        cfg = load_city(city)
        read = read_import_file(cfg, kind, file, sheet=sheet)  # the file first: its faults are the user's to fix
        res = import_file(cfg, kind, file, store=store.open_store(), sheet=sheet, message=message,
                          dry_run=dry_run, read=read)
    except TWIN_ERRORS as e:
        fail(e)
    for w in res.warnings:
        warn(f"{res.source}: {w}")
    print_json(res.model_dump())


@snapshot_app.command("diff")
def snapshot_diff(city: CityOpt, old: Annotated[str, typer.Argument(help="Older snapshot id.")],
                  new: Annotated[str, typer.Argument(help="Newer snapshot id.")]) -> None:
    """Rows added, removed and changed per layer between two snapshots."""
    try:
        d = _snaps(city).diff(old, new)
        print_json({"old": d.old, "new": d.new, "layers": d.counts()})
    except TWIN_ERRORS as e:
        fail(e)


@snapshot_app.command("retain")
def snapshot_retain(city: CityOpt,
                    keep: Annotated[int | None, typer.Option(help="Keep the newest N snapshots.")] = None,
                    older_than_days: Annotated[float | None, typer.Option(help="Only delete snapshots older "
                                                                                "than this many days.")] = None,
                    dry_run: Annotated[bool, typer.Option(help="Report without deleting.")] = False) -> None:
    """Delete old snapshots and the objects no kept snapshot uses (the newest is always kept)."""
    if keep is None and older_than_days is None:
        fail("give --keep N and/or --older-than-days D: without either, retain would keep everything")
    if keep is not None and keep < 1:
        fail(f"--keep {keep}: keep at least 1 (the newest snapshot is always kept)")
    try:
        older = dt.timedelta(days=older_than_days) if older_than_days is not None else None
        print_json(_snaps(city).retain(keep_last=keep, older_than=older, dry_run=dry_run).model_dump())
    except TWIN_ERRORS as e:
        fail(e)


@app.command("map")
def map_cmd(
    city: CityOpt = "hatyai",
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default: <state>/out/<city>/map.html, "
                                                   "never the current folder).")] = None,
    basemap: Annotated[str, typer.Option(help="none (offline: streets from the twin), or dark/light/voyager "
                                              "(Carto tiles, needs the internet).")] = "none",
    snapshot: Annotated[str | None, typer.Option(help="Snapshot id to draw (default: the latest in the "
                                                      "store).")] = None,
    from_store: Annotated[bool, typer.Option(help="Read the layers from the object store's snapshot; "
                                                  "--no-from-store draws demo layers only.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the demo layers used where the twin has no rows.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Write a kepler.gl map of the city's twin as one HTML file that renders with no internet."""
    from cluster.citymap import store_layers, write_map
    from twin.maps import MapInputError

    try:
        cfg = load_city(city)
        layers, snap_id, note = store_layers(cfg.id, snapshot) if from_store else ({}, None, "demo layers only")
        summary = write_map(cfg, out or state_dir("out") / cfg.id / "map.html", layers=layers, basemap=basemap,
                            seed=seed)
        summary.snapshot, summary.source = snap_id, note
    except (*TWIN_ERRORS, MapInputError) as e:
        fail(e)
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
    else:
        typer.echo(f"wrote {summary.out} ({summary.bytes / 1e6:.1f} MB) from {summary.source}: "
                   + ", ".join(f"{k} {v}" for k, v in summary.layers.items())
                   + (f"; demo layers: {', '.join(summary.demo_layers)}" if summary.demo_layers else ""))
