"""No import cycle among the modules of `pipeline/`, function-local imports included.

Why: a cycle hidden from Python by an import inside a function is still a
cycle in the design (two modules that each need the other cannot be read,
tested or moved alone). Python only notices the ones at module level, and
then only as a partially initialised module at import time; this test reads
every module's source with `ast` and takes every `import` wherever it sits
(module level, inside functions, under `if TYPE_CHECKING`), so a cycle fails
here with the modules that make it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pipeline"


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under `root/pipeline`."""
    names: dict[str, Path] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _resolve(name: str, level: int, current: str, is_package: bool) -> str:
    """The absolute module an `import`/`from` names (relative ones resolved from `current`)."""
    if level == 0:
        return name
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `name` imports anywhere in its file (only pipeline modules)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def add(target: str) -> None:
        # `import pipeline.a.b` names the module pipeline.a.b (its parents are
        # packages whose __init__ runs too, but a package importing a submodule of its
        # own is not a design cycle, so only the named module counts).
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, name, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in known else base)  # `from pipeline.x import y`: y may be a module
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    known = set(files)
    return {name: imports_of(name, path, known) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def one_loop(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete path round a component (a -> b -> ... -> a), to say where to cut."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in members)
        back = [w for w in nxt if w in path]
        if back:
            return [*path[path.index(back[0]):], back[0]]
        step = next(w for w in nxt if w not in seen)
        path.append(step)
        seen.add(step)


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    found = cycles(graph)
    assert found == [], "import cycles (function-local imports included):\n" + "\n".join(
        " -> ".join(one_loop(graph, c)) for c in found)


def test_the_graph_sees_local_and_relative_imports(tmp_path):
    """The check can fail: a planted loop through a function-local, relative import is named."""
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pipeline.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import thing\n    return thing\n")
    (pkg / "c.py").write_text("import pipeline.a\nthing = 1\n")
    (pkg / "d.py").write_text("from pipeline import a\n")  # an edge into the loop, not in it
    graph = import_graph(tmp_path)
    assert graph["pipeline.sub.b"] == {"pipeline.c"}
    assert graph["pipeline.a"] == {"pipeline.sub.b"}
    assert cycles(graph) == [["pipeline.a", "pipeline.c", "pipeline.sub.b"]]
    assert one_loop(graph, cycles(graph)[0]) == [
        "pipeline.a", "pipeline.sub.b", "pipeline.c", "pipeline.a"]


def test_the_graph_covers_the_package():
    """A walk that found nothing would pass vacuously."""
    graph = import_graph()
    assert len(graph) >= 60
    assert "pipeline.steps.uniq" in graph["pipeline.tasks.file_meta"]
