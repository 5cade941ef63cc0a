"""How the rooms depend on each other: no import circles in the simulator, and the gateway's
config loads without the simulator."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _imports(package: str) -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports, `if TYPE_CHECKING:` imports included
    (a circle there is still a circle a reader has to untangle)."""
    root = SRC.joinpath(*package.split("."))
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = here
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.level and node.module else (
                    base if node.level else node.module or "")
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = set()
        for target in found:
            if target.startswith(package + ".") and target != name:
                graph[name].add(target)
    return {m: {t for t in deps if t in graph} for m, deps in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle found by a depth-first walk (an explicit stack; bounded by the graph)."""
    found = []
    for start in sorted(graph):
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append([*path, start])
                elif nxt not in seen and nxt > start:  # each circle once, from its least name
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found


def test_the_simulator_has_no_import_circles() -> None:
    graph = _imports("tokenlane.sim")
    assert "tokenlane.sim.faults" in graph and graph["tokenlane.sim.spec"]
    modules = {m: {d for d in deps if d != "tokenlane.sim"} for m, deps in graph.items()
               if m != "tokenlane.sim"}  # the package's __init__ re-exports: not a module edge
    assert _cycles(modules) == []


def test_the_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_config_loads_without_the_simulator() -> None:
    """The gateway's config names the `sim:` section's type without importing the simulator
    (pydantic, uvicorn apps, fault tables) until a config has a `sim:` section."""
    code = ("import sys, tokenlane.config as c; "
            "c.parse_settings({'providers': {'p': {'base_url': 'http://127.0.0.1:9/v1'}}, "
            "'models': {'m': {'deployments': [{'provider': 'p', 'model': 'x', "
            "'price': {'input': 1, 'output': 1}}]}}}); "
            "print(sorted(m for m in sys.modules if m.startswith('tokenlane.sim')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
    with_sim = code.replace("'models'", "'sim': {'providers': [{'name': 'p'}]}, 'models'")
    out = subprocess.run([sys.executable, "-c", with_sim], capture_output=True, text=True,
                         check=True).stdout
    assert "tokenlane.sim.spec" in out
