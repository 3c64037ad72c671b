"""The docs say what the code does, checked here rather than by review:

- docs/architecture.md's "Who writes which table" names every module that writes
  each table (found with `ast`: SQLAlchemy insert/update/delete on a table, and
  raw INSERT/UPDATE/DELETE text), and every table the code defines;
- no comment or string in cai_bench/, tests/, docs/ or the README cites a file
  outside the repository (the design page the project was built from is not
  shipped: a reader of the code cannot open it) or a `dir/file.md` that does
  not exist.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import cai_bench

ROOT = Path(cai_bench.__file__).resolve().parent
REPO = ROOT.parent
DOC = REPO / "docs" / "architecture.md"

# --- who writes which table ---------------------------------------------------------------------------------------

_WRITE_FUNCS = {"insert", "update", "delete", "upsert", "_insert"}  # sqlalchemy's, the dialect upsert, store helpers
_RAW_WRITE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.I)


def defined_tables(sources: dict[str, str]) -> dict[str, str]:
    """Python name -> SQL name of every `X = Table("name", metadata, ...)` (a rich Table has no MetaData)."""
    out = {}
    for src in sources.values():
        for node in ast.walk(ast.parse(src)):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and getattr(node.value.func, "id", getattr(node.value.func, "attr", None)) == "Table"
                    and len(node.value.args) >= 2 and isinstance(node.value.args[0], ast.Constant)
                    and isinstance(node.value.args[1], (ast.Name, ast.Attribute))):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        out[target.id] = node.value.args[0].value
    return out


def table_writes(sources: dict[str, str]) -> set[tuple[str, str]]:
    """(file, table) for every write whose table can be read from the source: `insert(S.runs)`,
    `_insert(conn, S.scores)`, `update(work_units)`, `validations.insert()`, `text("UPDATE runs ...")`.
    A table held in a local variable is not resolved (migrations copy `prompts`, `generations` and
    `scores` that way when rebuilding an old SQLite store): the doc names those writers by hand."""
    tables = defined_tables(sources)
    out = set()
    for file, src in sources.items():
        tree = ast.parse(src)
        # a table is `T` defined or imported in this file (at top level or in a function), or `mod.T` with `mod`
        # an imported module (`S.runs`); a dict called `meta` that is neither is not the `meta` table
        imported = {(a.asname or a.name).split(".")[0] for n in ast.walk(tree)
                    if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        own = set(defined_tables({file: src}))

        def table_of(expr: ast.expr) -> str | None:
            if isinstance(expr, ast.Name) and (expr.id in own or expr.id in imported):
                return tables.get(expr.id)
            if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id in imported:
                return tables.get(expr.attr)
            return None

        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            hits = []
            if fname in _WRITE_FUNCS:
                hits += [table_of(a) for a in node.args]  # insert(T), _insert(conn, T)
            if fname in {"insert", "update", "delete"} and isinstance(func, ast.Attribute) and not node.args:
                hits.append(table_of(func.value))  # T.insert()
            if fname == "text" and node.args and isinstance(node.args[0], ast.Constant):
                m = _RAW_WRITE.match(str(node.args[0].value))
                hits.append(m.group(1) if m and m.group(1) in tables.values() else None)
            out.update((file, t) for t in hits if t)
    return out


def doc_writers(text: str) -> dict[str, set[str]]:
    """Table -> the files its row in "Who writes which table" names (paths relative to cai_bench/)."""
    section = text.split("## Who writes which table", 1)[1].split("\n## ", 1)[0]
    out: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) < 4 or set(cells[1].strip()) <= {"-"} or cells[1].strip() == "table":
            continue
        names = [n for n in re.findall(r"`([^`]+)`", cells[1]) if "/" not in n]
        files = set(re.findall(r"`([\w/]+\.py)`", cells[2]))
        for n in names:
            out[n] = files
    return out


def _sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in sorted(ROOT.rglob("*.py"))}


def test_the_table_of_writers_names_every_table_and_every_writer() -> None:
    sources = _sources()
    documented = doc_writers(DOC.read_text(encoding="utf-8"))
    tables = set(defined_tables(sources).values())
    assert set(documented) == tables, (f"docs/architecture.md 'Who writes which table': tables missing "
                                       f"{sorted(tables - set(documented))}, not in the code {sorted(set(documented) - tables)}")
    missing = sorted(f"{file} writes `{table}`" for file, table in table_writes(sources)
                     if file not in documented[table])
    assert not missing, "docs/architecture.md 'Who writes which table' lacks: " + "; ".join(missing)


def test_the_write_finder_finds_each_form() -> None:
    src = '''
from sqlalchemy import MetaData, Table, insert, text, update
from rich.table import Table as RichTable
metadata = MetaData()
leases = Table("work_units", metadata)
shown = RichTable("name", "stage")
def f(conn, rows):
    from cai_bench.results import schema as S  # a lazy import counts
    conn.execute(insert(leases))
    conn.execute(update(S.leases).values(x=1))
    conn.execute(leases.insert(), rows)
    conn.execute(text("DELETE FROM work_units WHERE 1"))
    rows.update({})       # a dict
    rows.insert(0, 1)     # a list
'''
    assert defined_tables({"m.py": src}) == {"leases": "work_units"}
    assert table_writes({"m.py": src}) == {("m.py", "work_units")}
    assert table_writes({"m.py": src.replace("    conn.execute(", "    # ")}) == set()


# --- no citation of files outside the repository ------------------------------------------------------------------

# the design page the code was built from lives outside the repository; so do absolute paths of this machine
_OUTSIDE = re.compile(r"\bDESIGN\b|\bshared/DESIGN|(?<![\w./-])/work/")
# a doc cited by path: one climbing out of the folder (`../x.md`) or one under docs/
_MD_PATH = re.compile(r"(?<![\w./-])((?:\.\./)+[\w.-]+(?:/[\w.-]+)*\.md|docs/[\w.-]+(?:/[\w.-]+)*\.md)\b")
_SELF = Path(__file__).resolve()


def _prose(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the comments and strings of a Python file; the whole of any other file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return list(enumerate(text.splitlines(), start=1))
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            out += [(tok.start[0] + i, line) for i, line in enumerate(tok.string.splitlines())]
    return out


def outside_citations(path: Path, repo: Path = REPO) -> list[str]:
    """`file:line: text` for each mention in `path` of a file outside `repo`, or of a `../name.md` or
    `docs/name.md` that is not in `repo` (resolved from `path`'s folder and from the repository root)."""
    bad = []
    for line, text in _prose(path):
        cited = [m.group(0) for m in _OUTSIDE.finditer(text)]
        for md in _MD_PATH.findall(text):
            where = [(base / md).resolve() for base in (path.parent, repo)]
            if not any(p.is_file() and p.is_relative_to(repo.resolve()) for p in where):
                cited.append(md)
        if cited:
            bad.append(f"{path.relative_to(repo)}:{line}: {', '.join(cited)}: {text.strip()[:100]}")
    return bad


def test_no_citation_of_a_file_outside_the_repository() -> None:
    files = [*ROOT.rglob("*.py"), *(REPO / "tests").rglob("*.py"), *(REPO / "docs").glob("*.md"), REPO / "README.md"]
    bad = [b for f in sorted(files) if f.resolve() != _SELF for b in outside_citations(f)]
    assert not bad, ("cite docs/*.md or state the fact where it is used, not a file outside the repository:\n"
                     + "\n".join(bad))


def test_the_citation_check_flags_outside_files_only(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "run.md").write_text("# Run\n")
    mod = tmp_path / "m.py"
    mod.write_text('"""The schema (DESIGN §2); see docs/run.md and docs/gone.md."""\n'
                   "# ../shared/DESIGN.md has it\n"
                   "DATA = '../shared/data'  # the data folder beside the clone: a path the code reads, not a cite\n"
                   "x = 1  # writes leaderboard.md and runs/za/report/pipeline.md (outputs, not cites)\n")
    found = outside_citations(mod, tmp_path)
    assert [f.split(":")[1] for f in found] == ["1", "2"], found
    assert "DESIGN, docs/gone.md" in found[0] and "shared/DESIGN" in found[1]
