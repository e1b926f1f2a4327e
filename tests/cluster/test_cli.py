"""Every `ssz` command group is wired and documents itself (an import error in any of them fails here)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cluster.cli import app

GROUPS = {
    "store": ["up", "down", "status"],
    "cluster": ["up", "down", "status"],
    "config": ["list", "validate", "show"],
    "api": ["up", "down", "token"],
    "twin": ["build", "snapshot", "map"],
    "bench": ["serve", "twin", "pipeline", "plan"],
    "quality": ["faces", "plates"],
    "plan": ["risk", "cameras", "patrol"],
}


@pytest.mark.parametrize(("group", "commands"), sorted(GROUPS.items()))
def test_group_lists_its_commands(group, commands):
    res = CliRunner().invoke(app, [group, "--help"])
    assert res.exit_code == 0, res.output
    for c in commands:
        assert c in res.output, (group, c)


def test_config_list_shows_the_bundled_cities():
    res = CliRunner().invoke(app, ["config", "list"])
    assert res.exit_code == 0
    for needle in ("hatyai", "617", "betong", "204", "sukhothai", "chiangmai"):
        assert needle in res.output
