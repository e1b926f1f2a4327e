"""``ssz plan``: risk scores and work orders, camera placement, patrol rounds (:mod:`cluster.planning`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cluster.cli.common import USER_ERRORS, CityOpt, fail, print_json, warn

app = typer.Typer(help="Planning: risk scores and fixes, camera placement, patrol rounds.", no_args_is_help=True,
                  add_completion=False)


@app.command("risk")
def risk_cmd(city: CityOpt = "chiangmai",
             incidents: Annotated[Path | None, typer.Option(
                 help="Incidents: CSV (UTF-8, TIS-620, UTF-16) or workbook (.xlsx, .xls, .ods); lon/lat (or x/y "
                      "UTM), a date-time or hour."
             )] = None,
             risk_points: Annotated[Path | None, typer.Option(help="Risk points: CSV or workbook (.xlsx, .xls, "
                                                                   ".ods) with kind and lon/lat (or x/y UTM).")] = None,
             incidents_sheet: Annotated[str | None, typer.Option(
                 help="Sheet of the incidents workbook (name or 0-based number; default: the first that names "
                      "the columns).")] = None,
             risk_points_sheet: Annotated[str | None, typer.Option(
                 help="Sheet of the risk points workbook (name or 0-based number; default: the first that names "
                      "the columns).")] = None,
             top: Annotated[int, typer.Option(help="How many streets and work orders to list.")] = 10,
             fixes: Annotated[int, typer.Option(help="Work orders fixed on the after map.")] = 5,
             map_out: Annotated[Path | None, typer.Option("--map", help="Offline before/after map path.")] = None,
             ) -> None:
    """Risk per street segment, the riskiest streets and the ranked lighting/landscaping work orders."""
    from cluster.planning import build_context, risk_plan

    for sheet, option, file in ((incidents_sheet, "--incidents-sheet", incidents),
                                (risk_points_sheet, "--risk-points-sheet", risk_points)):
        if sheet is not None and file is None:
            fail(f"{option} {sheet!r} names a sheet, but no {option.removesuffix('-sheet')} file is given: give the "
                 f"workbook with {option.removesuffix('-sheet')} FILE, or leave out {option}")
    try:
        ctx = build_context(city, incidents, risk_points, incidents_sheet=incidents_sheet,
                            risk_points_sheet=risk_points_sheet)
        out = risk_plan(ctx, top=top, fixes=fixes, map_out=map_out, risk_points_from_file=risk_points is not None)
    except USER_ERRORS as e:
        fail(e)
    for w in out.get("warnings", []):
        warn(w)
    print_json(out)


@app.command("cameras")
def cameras_cmd(city: CityOpt = "chiangmai",
                p: Annotated[int, typer.Option("--p", help="New cameras to place.")] = 20,
                exact: Annotated[bool, typer.Option(help="Exact MCLP (HiGHS) instead of greedy.")] = True,
                time_limit: Annotated[float, typer.Option(help="Solver time limit (s).")] = 30.0,
                fov: Annotated[float, typer.Option(help="Field of view of new cameras (degrees).")] = 60.0,
                range_m: Annotated[float, typer.Option(help="Useful range of new cameras (m).")] = 40.0,
                map_out: Annotated[Path | None, typer.Option("--map", help="Offline kepler.gl map path.")] = None,
                sight_lines: Annotated[bool, typer.Option(help="A camera sees a street point only along a sight "
                                                               "line inside the street corridor.")] = True,
                corridor_m: Annotated[float, typer.Option(help="Corridor half-width (m).")] = 12.0,
                ) -> None:
    """Place ``p`` new cameras on the zone's streets (existing cameras pinned), maximising covered risk."""
    from cluster.planning import build_context, camera_plan

    try:
        out = camera_plan(build_context(city), p, exact=exact, time_limit=time_limit, fov=fov, range_m=range_m,
                          map_out=map_out, sight_lines=sight_lines, corridor_m=corridor_m)
    except USER_ERRORS as e:
        fail(e)
    print_json(out)


@app.command("patrol")
def patrol_cmd(city: CityOpt = "chiangmai",
               units: Annotated[int | None, typer.Option(help="Patrol units (default: the city's config).")] = None,
               shift_h: Annotated[float, typer.Option(help="Shift length (hours).")] = 8.0,
               hotspots: Annotated[int, typer.Option(help="Candidate hot spots (optional stops).")] = 10,
               per_day: Annotated[int, typer.Option(help="Hot spots sampled into today's rounds.")] = 5,
               day: Annotated[int, typer.Option(help="Day number: seeds the randomised schedule.")] = 0,
               rounds: Annotated[int, typer.Option(help="Rounds of the QR boxes per shift.")] = 1,
               time_limit: Annotated[float, typer.Option(help="Routing time limit (s).")] = 10.0) -> None:
    """Plan today's QR rounds: every checkpoint, a risk-weighted random set of hot spots, isochrones."""
    from cluster.planning import build_context, patrol_plan

    try:
        out = patrol_plan(build_context(city), units=units, shift_h=shift_h, hotspots=hotspots, per_day=per_day,
                          day=day, rounds=rounds, time_limit=time_limit)
    except USER_ERRORS as e:
        fail(e)
    print_json(out)


@app.command("capacity")
def capacity_cmd(city: Annotated[str, typer.Option(help="hatyai | betong | ... | national (100 stations at Hat "
                                                        "Yai's density) | all")] = "all",
                 stations: Annotated[int, typer.Option(min=1, help="Stations of the national case.")] = 100,
                 cores: Annotated[int, typer.Option(help="CPU cores per node.")] = 32,
                 gpus: Annotated[int, typer.Option(help="GPUs per node (needs GPU stage costs).")] = 0,
                 gate_pass: Annotated[float, typer.Option(help="Share of frames the motion gate passes.")] = 0.35,
                 faces_per_frame: Annotated[float, typer.Option(help="Faces per sampled CCTV frame.")] = 0.5,
                 costs: Annotated[Path | None, typer.Option(help="Stage costs JSON (default: what `ssz bench "
                                                                 "stages` wrote).")] = None,
                 plot_out: Annotated[Path | None, typer.Option(
                     "--plot", help="Chart of cores per stage (.png, .svg or .pdf; the folder must exist).")] = None,
                 validate_run: Annotated[Path | None, typer.Option(
                     "--validate", help="JSON of a measured `ssz run --detect truth --json` on this machine (not a "
                                        "calibration run): print the model's prediction of its CPU, the error and "
                                        "the cameras this machine carries, as JSON")] = None,
                 as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables.")] = False) -> None:
    """Nodes, cores and GPUs a city needs, with the Ray placement and each stage's cost, from measured costs."""
    from rich.table import Table

    from cluster.capacity import (
        NodeType,
        check_plot_path,
        city_workload,
        load_costs,
        load_run,
        national_workload,
        plan,
        plot,
        validate,
    )
    from cluster.cli.common import console

    if validate_run is not None:
        try:
            run = load_run(validate_run)
            v = validate(load_costs(costs), run)
        except USER_ERRORS as e:
            fail(e)
        if not v.independent:
            warn(f"{validate_run} has the cameras and frame rate of a calibration run of these costs: the error says "
                 "how well the fit matches its own data, not how well the model predicts (independent: false)")
        print_json(v.model_dump())
        return
    try:
        if plot_out is not None:
            check_plot_path(plot_out)
        c = load_costs(costs)
        over = {"gate_pass": gate_pass, "faces_per_frame": faces_per_frame}
        names = ["hatyai", "betong", "national"] if city == "all" else [city]
        node = NodeType(cores=cores, gpus=gpus)
        plans = [plan(c, national_workload(stations, **over) if n == "national" else city_workload(n, **over), node)
                 for n in names]
    except USER_ERRORS as e:
        fail(e)
    if plot_out is not None:
        try:
            plot(plans, plot_out)
        except OSError as e:
            fail(f"--plot {plot_out}: cannot write it ({e.strerror or e}): choose another path")
    if as_json:
        print_json([p.model_dump() for p in plans])
        return
    for p in plans:
        t = Table("stage", "items/s", "ms/item", "cores", "GPUs", "share",
                  title=f"{p.workload.name}: {p.workload.cctv} CCTV + {p.workload.plate} plate cameras at "
                        f"{p.workload.fps:g} fps -> {p.nodes} node(s) of {cores} cores"
                        + (f" + {gpus} GPU" if gpus else ""))
        for x in p.stages:
            t.add_row(x.stage, f"{x.items_per_s:,.1f}", "" if x.ms_per_item is None else f"{x.ms_per_item:.3f}",
                      f"{x.cores:,.2f}", f"{x.gpus:,.2f}", f"{100 * x.share:.1f}%")
        console.print(t)
        console.print(f"  total {p.cores:,.1f} cores, {p.gpus:,.1f} GPUs; {p.shards} shards ({p.shards_per_node} per "
                      f"node), {p.face_replicas} face and {p.plate_replicas} plate replicas"
                      + (f"; shard memory {p.memory_gb} GB" if p.memory_gb else ""))
        for n in p.notes:
            console.print(f"  note: {n}")
