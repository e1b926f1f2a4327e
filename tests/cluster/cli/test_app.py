"""Every `ssz` command group is wired and documents itself (an import error in any of them fails here)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cluster.cli import app

GROUPS = {
    "store": ["up", "down", "status"],
    "cluster": ["up", "down", "status"],
    "config": ["list", "validate", "show", "schema"],
    "api": ["up", "down", "token"],
    "twin": ["build", "import", "snapshot", "map"],
    "bench": ["serve", "twin", "pipeline", "plan", "fuzz", "ingest", "chaos", "stages"],
    "quality": ["faces", "plates"],
    "plan": ["risk", "cameras", "patrol", "capacity"],
    "audit": ["verify", "restore", "evidence", "lists"],
    "train": ["plates", "plates-average", "plate-corners"],
}
COMMANDS = ["demo", "eval", "run", "status", "lab"]


def test_the_app_holds_exactly_the_documented_groups_and_commands():
    import typer.main

    root = typer.main.get_command(app)
    assert set(root.commands) == set(GROUPS) | set(COMMANDS)
    for group, commands in GROUPS.items():
        assert sorted(root.commands[group].commands) == sorted(commands), group


@pytest.mark.parametrize(("group", "commands"), sorted(GROUPS.items()))
def test_group_lists_its_commands(group, commands):
    res = CliRunner().invoke(app, [group, "--help"])
    assert res.exit_code == 0, res.output
    # each command is a row of the help's command table: its name first, then its one-line help
    rows = {line.strip(" │|").split()[0] for line in res.output.splitlines() if line.strip(" │|")}
    for c in commands:
        assert c in rows, (group, c, res.output)


def test_config_list_shows_the_bundled_cities():
    res = CliRunner().invoke(app, ["config", "list"])
    assert res.exit_code == 0
    # one table row per city: id, station, zone km², cameras, plate cameras, graph source
    rows = {cells[0]: cells for line in res.output.splitlines()
            if len(cells := [c.strip() for c in line.strip("│┃|").split("│") if c.strip()]) == 6}
    assert set(rows) >= {"hatyai", "betong", "sukhothai", "chiangmai"}
    assert rows["hatyai"][2:] == ["0.47", "617", "48", "generated"]
    assert rows["betong"][2:] == ["0.5", "204", "16", "generated"]
    assert rows["chiangmai"][5] == "osm_file"


@pytest.mark.parametrize(("args", "why"), [
    (["eval", "--city", "betong", "--face-cameras", "0", "--plate-cameras", "0"], "nothing to simulate"),
    # the errors name the options, not the configuration fields behind them (field 'stream_s', 'duration_s')
    (["demo", "--city", "betong", "--stream-s", "-1"], "error: --stream-s: Input should be greater than 0"),
    (["eval", "--city", "betong", "--plate-cameras", "-1"], "error: --plate-cameras: Input should be greater than or "
                                                             "equal to 0"),
    (["run", "--city", "betong", "--duration", "-1"], "error: --duration: Input should be greater than or equal to 0"),
    (["bench", "chaos", "--duration", "-5"], "error: --duration: Input should be greater than 0"),
    (["eval", "--city", "atlantis"], "unknown city 'atlantis'"),
    (["demo", "--city", "betong", "--port", "0"], "'--port': Input should be greater than or equal to 1"),
    # more cameras than the city has ran all of them (619 at Hat Yai for --cameras 100000)
    (["run", "--city", "betong", "--cameras", "100000"],
     "--cameras 100000: betong has 204 face (CCTV) cameras; give at most 204, or 'all'"),
    (["run", "--city", "betong", "--cameras", "3", "--plate-cameras", "17"],
     "--plate-cameras 17: betong has 16 plate cameras"),
])
def test_simulation_options_are_checked_before_anything_starts(args, why, tmp_path, monkeypatch):
    monkeypatch.setenv("SSZ_HOME", str(tmp_path))  # no store nor Ray is started for a bad option
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert why in " ".join(res.output.split()) and "Traceback" not in res.output
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(("error", "shown"), [
    (KeyError("alert 'a/1' is not known"), "error: alert 'a/1' is not known"),
    (ValueError("'กขค 123' is not a Thai registration"), "error: 'กขค 123' is not a Thai registration"),
    (ValueError("[bold]x[/] row [3] ['lat']"), "error: [bold]x[/] row [3] ['lat']"),
])
def test_fail_prints_the_message_whole(error, shown):
    """No quote lost (a KeyError's repr, stripped quotes) and no text eaten as Rich markup."""
    import typer

    from cluster.cli.common import err, fail

    with pytest.raises(typer.Exit) as e, err.capture() as cap:
        fail(error)
    assert e.value.exit_code == 2
    assert cap.get().strip() == shown


@pytest.mark.parametrize(("home", "shown"), [
    ("~nosuchuserssz/state", "SSZ_HOME=~nosuchuserssz/state: this machine knows no home folder for "
                             "'~nosuchuserssz': set SSZ_HOME to a full path"),
    ("{file}", "SSZ_HOME={file}: {file} is a file, not a folder: set SSZ_HOME to a folder"),
    ("{file}/state", "SSZ_HOME={file}/state: cannot make the folder {file}/state (Not a directory): set SSZ_HOME "
                     "to a folder you can write"),
])
def test_a_state_folder_that_cannot_be_used_is_said_before_any_command(home, shown, tmp_path, monkeypatch):
    """SSZ_HOME naming an unknown user's home, a file, or a place under a file: one clear line and exit 2 for any
    command, never a traceback (it was RuntimeError / FileExistsError / NotADirectoryError from deep in a command)."""
    file = tmp_path / "a-file"
    file.write_text("x")
    monkeypatch.setenv("SSZ_HOME", home.format(file=file))
    res = CliRunner().invoke(app, ["store", "status"])
    assert res.exit_code == 2, res.output
    assert " ".join(res.output.split()) == f"error: {shown.format(file=file)}"


def test_the_state_folder_is_made_owner_only_under_ssz_home(tmp_path, monkeypatch):
    from serve.state import ssz_home, state_dir

    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "deep" / "home"))
    assert ssz_home() == tmp_path / "deep" / "home"
    assert state_dir("models") == tmp_path / "deep" / "home" / "models"
    assert (tmp_path / "deep" / "home").stat().st_mode & 0o777 == 0o700


def test_down_commands_are_no_ops_when_nothing_runs(tmp_path, monkeypatch):
    """`ssz api down` with no cluster exited 2 ("nothing to take down") while store and cluster down exit 0:
    a clean-up script under `set -e` stopped there."""
    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "home"))
    res = CliRunner().invoke(app, ["api", "down"])
    assert (res.exit_code, res.output.strip()) == (0, "api: not running (no cluster recorded)")
    for group in ("store", "cluster"):
        res = CliRunner().invoke(app, [group, "down"])
        assert res.exit_code == 0 and '"running": false' in res.output, (group, res.output)


def test_api_down_without_the_api_says_so(ray_cluster, tmp_path, monkeypatch):
    """With a cluster but no API deployed it said "api: removed"."""
    from cluster import raycluster, serving

    monkeypatch.setattr(raycluster, "known_address", lambda: ray_cluster)
    monkeypatch.setattr(serving, "status", lambda url=None: serving.ApiStatus(
        url=None, running=False, users={}, watchlist_path="w", hotlist_path="h"))
    res = CliRunner().invoke(app, ["api", "down"])
    assert (res.exit_code, res.output.strip()) == (0, "api: not running")


@pytest.mark.parametrize("args", [["api", "up", "--port", "70000"], ["api", "up", "--port", "0"],
                                  ["cluster", "up", "--port", "0"], ["cluster", "up", "--num-cpus", "-1"],
                                  ["cluster", "up", "--num-gpus", "-1"],
                                  # bench ingest --pings 0 measured nothing (0 pings/s); --batch 0 ended in a
                                  # ValueError traceback after the API was deployed
                                  ["bench", "ingest", "--pings", "0"], ["bench", "ingest", "--batch", "0"],
                                  ["bench", "ingest", "--concurrency", "0"], ["bench", "ingest", "--sos", "-1"]])
def test_out_of_range_ports_and_resources_are_usage_errors(args, tmp_path, monkeypatch):
    """`ssz api up --port 70000` deployed and warned 'the API is there, not on 127.0.0.1:70000'; a cluster with
    -1 CPUs went to Ray. Both are refused before anything starts."""
    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "home"))
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and f"Invalid value for '{args[2]}': Input should be" in res.output, res.output
    assert not (tmp_path / "home" / "store").exists()  # nothing was started


def test_quality_faces_says_where_the_face_set_is_missing_and_writes_to_the_state_folder(tmp_path, monkeypatch):
    """Without the shared data it ended in a FileNotFoundError traceback; its default --out was ./out/face-eval
    of whatever folder it ran in."""
    from serve.face import evaluate

    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SSZ_SHARED_DATA", str(tmp_path / "shared"))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["quality", "faces"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"the labelled face set is not at {tmp_path / 'shared' / 'faces_deepface'}" in " ".join(res.output.split())
    (tmp_path / "shared" / "faces_deepface").mkdir(parents=True)
    (tmp_path / "shared" / "faces_deepface" / "identities.csv").write_text("file,identity_id\n")
    seen = {}
    monkeypatch.setattr(evaluate, "evaluate_faces", lambda data_dir, out_dir: seen.update(out=out_dir) or {
        "engines": {}})
    res = CliRunner().invoke(app, ["quality", "faces"])
    assert res.exit_code == 0, res.output
    assert seen["out"] == tmp_path / "home" / "out" / "face-eval" and not (tmp_path / "out").exists()
