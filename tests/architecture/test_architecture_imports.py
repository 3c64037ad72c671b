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


def import_sites(path: Path, name: str, modules: set[str] = frozenset()) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `path` (relative imports resolved).
    `from pkg import sub` counts as importing `pkg.sub` alone when that is one of
    `modules` (the package's own `__init__` is not what it asks for)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = {f"{mod}.{alias.name}" for alias in node.names} & modules
            out += [(node.lineno, sub) for sub in sorted(subs)]
            if len(subs) < len(node.names):
                out.append((node.lineno, mod))
    return out


def _imports(path: Path, name: str, modules: set[str] = frozenset()) -> set[str]:
    """Absolute names of the modules `path` imports (see `import_sites`)."""
    return {mod for _, mod in import_sites(path, name, modules)}


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


# --- layers -----------------------------------------------------------------------------------------------------
# The layer order is the ```layers block of docs/architecture.md, read here: the page shows the one list the test
# checks, so the two cannot drift.

DOC = ROOT.parent / "docs" / "architecture.md"

# Imports that break the documented order today, each to be removed once fixed:
# (importing module, imported module) -> why it is there. The test fails on an entry that no longer occurs.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


def read_layers(text: str) -> list[tuple[str, list[str]]]:
    """The ```layers block: (layer name, entries) per line, top line first."""
    lines = text.splitlines()
    start = lines.index("```layers") + 1
    body = lines[start: lines.index("```", start)]
    out = []
    for line in body:
        line = line.split("#", 1)[0].strip()
        if line:
            label, _, entries = line.partition(":")
            out.append((label.strip(), entries.split()))
    return out


def _entry_of(module: str, entries: dict[str, int]) -> str | None:
    """The longest entry that is `module` or a package holding it (names relative to cai_bench;
    `__init__` is cai_bench/__init__.py)."""
    rel = module.split(".", 1)[1] if "." in module else "__init__"
    parts = rel.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in entries:
            return ".".join(parts[:n])
    return None


def _with_parents(module: str) -> list[str]:
    """`module` and the packages above it inside cai_bench: importing a.b.c runs a/__init__ and a/b/__init__."""
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 1, -1)]


def layer_violations(sites: list[tuple[str, str, int, str]], layers: list[tuple[str, list[str]]]) -> list[str]:
    """Every (module, file, line, imported module) of `sites` that breaks the order of `layers` (top line first).

    Read bottom up: a module imports only from its own line or lines below. Two top-level units on one line never
    import each other, except on the bottom line (leaf modules). A package split over lines (an entry such as
    `validity.run` above `validity`) may import its own parts on its line or below, never above."""
    rank = {e: len(layers) - 1 - i for i, (_, entries) in enumerate(layers) for e in entries}
    label = {e: name for name, entries in layers for e in entries}
    out = []
    for module, file, line, imported in sites:
        src = _entry_of(module, rank)
        for dep in _with_parents(imported):
            dst = _entry_of(dep, rank)
            if src is None or dst is None or src == dst:
                continue
            same_unit = src.split(".")[0] == dst.split(".")[0]
            if rank[dst] > rank[src]:
                rule = (f"`{dst}` (line {label[dst]!r}) is above `{src}` (line {label[src]!r}): "
                        "a lower layer never imports a higher one")
            elif rank[dst] == rank[src] and not same_unit and rank[src] > 0:
                rule = (f"`{src}` and `{dst}` are both on line {label[src]!r}: "
                        "units on one line never import each other")
            else:
                continue
            out.append(f"{file}:{line}: {module} imports {imported}: {rule} (docs/architecture.md, layers)")
            break
    return out


def _all_sites() -> list[tuple[str, str, int, str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    names = set(files)
    return [(name, str(path.relative_to(ROOT.parent)), line, mod)
            for name, path in sorted(files.items())
            for line, mod in import_sites(path, name, names) if mod in names and mod != name]


def test_layers_cover_every_module_and_name_only_real_ones() -> None:
    layers = read_layers(DOC.read_text(encoding="utf-8"))
    entries = [e for _, es in layers for e in es]
    assert len(entries) == len(set(entries)), "an entry appears twice in the layers block"
    modules = {_module_name(p) for p in ROOT.rglob("*.py")}
    rel = {m.split(".", 1)[1] if "." in m else "__init__" for m in modules}
    stale = [e for e in entries if e not in rel]
    assert not stale, f"layers block names what cai_bench does not have: {stale}"
    loose = sorted(m for m in modules if _entry_of(m, dict.fromkeys(entries)) is None)
    assert not loose, f"modules on no line of the layers block in docs/architecture.md (add them): {loose}"


def test_imports_follow_the_layers() -> None:
    """Top-level and function-local imports alike; an allowed entry must still occur (remove it once fixed)."""
    layers = read_layers(DOC.read_text(encoding="utf-8"))
    found = layer_violations(_all_sites(), layers)
    allowed = {v for v in found for (m, d) in KNOWN_VIOLATIONS if f" {m} imports {d}:" in v}
    assert not sorted(set(found) - allowed), "\n".join(sorted(set(found) - allowed))
    fixed = [k for k in KNOWN_VIOLATIONS if not any(f" {k[0]} imports {k[1]}:" in v for v in found)]
    assert not fixed, f"fixed: remove from KNOWN_VIOLATIONS: {fixed}"


def test_the_layer_check_catches_each_rule() -> None:
    layers = [("top", ["app"]), ("mid", ["harness", "reports", "validity.run"]),
              ("low", ["results", "validity"]), ("bottom", ["errors", "io"])]

    def check(module: str, imported: str) -> list[str]:
        return layer_violations([(module, "f.py", 7, imported)], layers)

    assert not check("cai_bench.app.main", "cai_bench.results.store")  # down
    assert not check("cai_bench.io", "cai_bench.errors")  # leaves on the bottom line
    assert not check("cai_bench.validity.run", "cai_bench.validity.store")  # a split package, downward
    upward = check("cai_bench.results.store", "cai_bench.harness.runner")
    assert upward == ["f.py:7: cai_bench.results.store imports cai_bench.harness.runner: `harness` (line 'mid') "
                      "is above `results` (line 'low'): a lower layer never imports a higher one "
                      "(docs/architecture.md, layers)"]
    assert "never import each other" in check("cai_bench.reports.build", "cai_bench.harness")[0]
    assert check("cai_bench.validity.store", "cai_bench.validity.run")  # a split package, upward
    # importing validity.store runs validity/__init__: a parent package on a higher line counts too
    split = [("top", ["validity"]), ("mid", ["reports"]), ("low", ["validity.store"])]
    via_parent = layer_violations([("cai_bench.reports.x", "f.py", 3, "cai_bench.validity.store")], split)
    assert len(via_parent) == 1 and "`validity` (line 'top') is above `reports`" in via_parent[0]
