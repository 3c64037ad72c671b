"""The package layout holds: no import cycle between cai_bench's subpackages or
inside one, no import of another package's `_private` module, and `reports` stays
free of torch and transformers (it reads the store on machines without them).

The graph is read from the source with `ast`, so it sees imports inside
functions too (a lazy import still ties two modules together)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import cai_bench

ROOT = Path(cai_bench.__file__).resolve().parent
HEAVY = ("torch", "transformers")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str] = frozenset()) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved).
    `from pkg import sub` counts as importing `pkg.sub` alone when that is one of
    `modules` (the package's own `__init__` is not what it asks for)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = {f"{mod}.{alias.name}" for alias in node.names} & modules
            out.update(subs)
            if len(subs) < len(node.names):
                out.add(mod)
    return out


def module_graph() -> dict[str, set[str]]:
    """cai_bench module -> the cai_bench modules it imports."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    names = set(files)
    return {name: {m for m in _imports(path, name, names) if m in names and m != name}
            for name, path in files.items()}


def external_imports() -> dict[str, set[str]]:
    """cai_bench module -> top-level names of the non-cai_bench modules it imports."""
    out: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        out[name] = {m.split(".")[0] for m in _imports(path, name) if m and not m.startswith("cai_bench")}
    return out


def _unit(module: str) -> str:
    """The subpackage (or top-level module) a module belongs to: cai_bench.harness.scorers.judge -> harness."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in `graph` as [a, b, ..., a], or None (iterative DFS)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for mod, deps in graph.items():
        out[_unit(mod)]
        for dep in deps:
            if _unit(dep) != _unit(mod):
                out[_unit(mod)].add(_unit(dep))
    return dict(out)


def _witness(graph: dict[str, set[str]], a: str, b: str) -> str:
    return next(f"{m} -> {d}" for m, deps in sorted(graph.items()) for d in sorted(deps)
                if _unit(m) == a and _unit(d) == b)


def test_no_cycle_between_subpackages() -> None:
    graph = module_graph()
    cycle = find_cycle(package_graph(graph))
    assert cycle is None, "package cycle " + " -> ".join(cycle) + ": " + "; ".join(
        _witness(graph, a, b) for a, b in zip(cycle, cycle[1:]))


def test_no_cycle_inside_a_subpackage() -> None:
    graph = module_graph()
    inner = {m: {d for d in deps if _unit(d) == _unit(m)} for m, deps in graph.items()}
    cycle = find_cycle(inner)
    assert cycle is None, ("module cycle " + " -> ".join(cycle) + " (a package's __init__ imports the module "
                           "that imports it back; e.g. cli commands take `app` from cai_bench.cli._app)")


def test_no_private_module_of_another_package() -> None:
    graph = module_graph()
    bad = []
    for mod, deps in graph.items():
        for dep in deps:
            parts = dep.split(".")
            private = [i for i, p in enumerate(parts) if p.startswith("_")]
            if private:
                owner = ".".join(parts[: private[0]])  # the package that owns the private name
                if not (mod == owner or mod.startswith(owner + ".")):
                    bad.append(f"{mod} -> {dep}")
    assert not bad, "private modules imported from outside their package: " + "; ".join(sorted(bad))


def test_reports_import_neither_torch_nor_transformers() -> None:
    ext = external_imports()
    graph = module_graph()
    # everything reports reaches inside cai_bench, lazily or not
    seen, todo = set(), [m for m in graph if _unit(m) == "reports"]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    bad = sorted(f"{m} imports {x}" for m in seen for x in ext[m] & set(HEAVY))
    assert not bad, "; ".join(bad)


def _top_level_names(path: Path) -> set[str] | None:
    """Names a module binds at top level (None when it has a module `__getattr__`)."""
    names: set[str] = set()
    todo = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, field, []))
        elif isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)
    return None if "__getattr__" in names else names


def test_every_cai_bench_import_resolves() -> None:
    """A moved module leaves no stale `cai_bench.old.place` import behind, even inside a function."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    bad = []
    for name, path in sorted(files.items()):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                bad += [f"{name}: import {a.name}" for a in node.names
                        if a.name.startswith("cai_bench") and a.name not in files]
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("cai_bench"):
                if node.module not in files:
                    bad.append(f"{name}: from {node.module}")
                    continue
                known = _top_level_names(files[node.module])
                bad += [f"{name}: from {node.module} import {a.name}" for a in node.names
                        if known is not None and a.name not in known and f"{node.module}.{a.name}" not in files]
    assert not bad, "imports that do not resolve: " + "; ".join(bad)


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None
