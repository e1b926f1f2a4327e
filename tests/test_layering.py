"""The one-way dependency rule of DESIGN.md: twin <- serve <- actors <- cluster.

`twin` imports none of the others (an analyst uses it alone), `serve` may use `twin`, `actors` may use
`serve` and `twin`, and only `cluster` wires everything together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "twin": set(),
    "serve": {"twin"},
    "actors": {"serve", "twin"},
    "cluster": {"actors", "serve", "twin"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_one_way(package):
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for dep in _imports(path) - ALLOWED[package] - {package}:
            bad.append(f"{path.relative_to(ROOT)} imports {dep}")
    assert not bad, "\n".join(bad)
