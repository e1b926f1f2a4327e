"""The import rules of the code base, read from the source (no import is executed):

* no import cycles among the project's modules, counting imports inside functions too (a "lazy" import that
  closes a cycle is still a cycle: the modules cannot be understood or loaded one without the other);
* no module of ``twin``, ``serve`` or ``actors`` imports the CLI (``cluster.cli``);
* only the CLI ends the process: no other module calls ``sys.exit``, ``os._exit``, ``exit``/``quit`` or
  raises ``typer.Exit``, ``typer.Abort`` or ``SystemExit``.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cluster", "actors", "serve", "twin")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The project module an imported name refers to (the longest module prefix), or None outside the project."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        cand = ".".join(parts[:n])
        if cand in MODULES:
            return cand
    return None


@functools.cache
def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                out.add(target)
    return out


GRAPH = nx.DiGraph([(m, t) for m in MODULES for t in _imports(m)])
GRAPH.add_nodes_from(MODULES)


def test_the_graph_reads_the_project() -> None:
    # a sanity check that the reader sees real edges, so that "no cycle" below means something
    assert len(MODULES) > 60
    assert ("cluster.cli", "cluster.cli.common") in GRAPH.edges or "cluster.cli.common" in nx.descendants(
        GRAPH, "cluster.cli")
    assert "twin.schemas" in nx.descendants(GRAPH, "actors.alerts")


def test_no_import_cycles() -> None:
    cycles = [sorted(c) for c in nx.strongly_connected_components(GRAPH) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("package", ["twin", "serve", "actors"])
def test_no_domain_package_imports_the_cli(package: str) -> None:
    bad = [f"{m} imports {t}" for m in MODULES if m.split(".")[0] == package
           for t in _imports(m) if t == "cluster.cli" or t.startswith("cluster.cli.")]
    assert not bad, "\n".join(bad)


@functools.cache
def _exits(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            if (owner, name) in {("sys", "exit"), ("os", "_exit"), ("", "exit"), ("", "quit")}:
                found.append(f"line {node.lineno}: {owner + '.' if owner else ''}{name}()")
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = exc.attr if isinstance(exc, ast.Attribute) else exc.id if isinstance(exc, ast.Name) else ""
            if name in {"Exit", "Abort", "SystemExit"}:
                found.append(f"line {node.lineno}: raise {name}")
    return found


def test_only_the_cli_ends_the_process() -> None:
    bad = [f"{m} ({MODULES[m].relative_to(ROOT)}) {e}" for m in MODULES
           if not (m == "cluster.cli" or m.startswith("cluster.cli."))
           and MODULES[m].name != "rtsp_server.py"  # a standalone test server script run by /usr/bin/python3
           for e in _exits(MODULES[m])]
    assert not bad, "\n".join(bad)
    assert _exits(MODULES["cluster.cli.common"]), "the checker finds the CLI's own exit (it reads calls right)"
