"""No test outside the `shared_data` group reads ../shared: a user's clone has nothing beside it, so the
default suite must pass, and mean the same, without it. tests/conftest.py hides the folder from every test
not so marked; this check keeps tests from naming the path themselves."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _names_shared(node: ast.AST) -> bool:
    """`<the checkout> / ... / "shared"`: a path built from this file's place (`__file__`, `ROOT`, `.parents`),
    not a folder a test lays out under its tmp_path."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
            and isinstance(node.right, ast.Constant) and node.right.value == "shared"):
        return False
    left = ast.unparse(node.left)
    return "__file__" in left or "ROOT" in left or "parents[" in left


def _marked(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any("shared_data" in ast.unparse(d) for d in fn.decorator_list)


def test_only_tests_marked_shared_data_name_the_folder() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path == TESTS / "data_folders.py":
            continue  # defines SHARED_DATA, which tests/conftest.py hides from every test not marked
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_marked = any(isinstance(s, ast.Assign) and "pytestmark" in ast.unparse(s.targets[0])
                            and "shared_data" in ast.unparse(s.value) for s in tree.body)
        for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            if module_marked or _marked(fn):
                continue
            if any(_names_shared(n) for n in ast.walk(fn)):
                offenders.append(f"{path.relative_to(TESTS)}:{fn.lineno} {fn.name}")
        for stmt in tree.body:  # module-level constants are read by unmarked tests too
            if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                    and any(_names_shared(n) for n in ast.walk(stmt)):
                offenders.append(f"{path.relative_to(TESTS)}:{stmt.lineno} (module level)")
    assert not offenders, "reads ../shared without @pytest.mark.shared_data: " + "; ".join(offenders)

