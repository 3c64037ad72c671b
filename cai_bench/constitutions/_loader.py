"""Find and load constitutions: built-ins, then `extra_dirs` (`--constitutions`),
then `$CAI_BENCH_PATH`, then the home's constitutions and user-task folders.

Ids are one namespace: `constitutions import` refuses an id that is built in or
defined by another file. A clash met anyway (a file dropped into a search
folder) is one warning naming both files, and the first definition in search
order is used: a built-in is never shadowed (its tasks keep working). Only
asking for an id that two user files define differently is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from cai_bench.constitutions._schema import ID_RE, Constitution
from cai_bench.errors import UserError
from cai_bench.io import expand_user, format_validation, is_file, load_yaml, plain, validation_problems
from cai_bench.paths import cai_bench_home, search_path_entries

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
_SUFFIXES = (".yaml", ".yml")

log = logging.getLogger("cai_bench.constitutions")
_warned: set[tuple[str, str, str]] = set()  # clashes already reported in this process


def search_dirs(extra_dirs: Sequence[Path] = ()) -> list[Path]:
    """Folders searched for constitutions, in priority order."""
    home = cai_bench_home()
    return [BUILTIN_DIR, *map(Path, extra_dirs), *search_path_entries(), home / "constitutions", home / "tasks"]


def _files_in(entry: Path) -> Iterable[Path]:
    if entry.is_file():
        yield entry
        return
    if not entry.is_dir():
        return
    for p in sorted(entry.iterdir()):
        if p.is_file() and p.suffix in _SUFFIXES and p.name not in ("task.yaml", "task.yml"):
            yield p
    for sub in ("constitutions",):
        d = entry / sub
        if d.is_dir():
            yield from sorted(p for p in d.iterdir() if p.is_file() and p.suffix in _SUFFIXES)
    for pattern in ("*/constitution.yaml", "tasks/*/constitution.yaml"):
        yield from sorted(entry.glob(pattern))


def _is_constitution(path: Path) -> bool:
    """Top-level YAML in a shared $CAI_BENCH_PATH folder may be another kind of
    file (a training recipe, a run config): it counts only with `principles`."""
    try:
        data = load_yaml(path)
    except UserError:
        return True  # let the real load report the problem
    return isinstance(data, dict) and "principles" in data


def candidate_files(extra_dirs: Sequence[Path] = ()) -> list[Path]:
    seen: set[Path] = set()
    out: list[Path] = []
    shared = {Path(p).expanduser().resolve() for p in search_path_entries()}
    for d in search_dirs(extra_dirs):
        d = Path(d).expanduser()
        lenient = d.resolve() in shared and d not in map(Path, extra_dirs)
        for f in _files_in(d):
            r = f.resolve()
            if r in seen:
                continue
            if lenient and f.parent == d and not _is_constitution(f):
                continue
            seen.add(r)
            out.append(f)
    return out


def parse_constitution(path: Path) -> Constitution:
    """Load one constitution file; every schema problem listed in one UserError."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}:1: (top level): expected a mapping with id, name, culture, principles; "
                        f"got {type(data).__name__}")
    try:
        c = Constitution.model_validate(plain(data))
    except ValidationError as exc:
        raise UserError(format_validation(path, exc, data)) from None
    c.path = path
    return c


@lru_cache(maxsize=256)
def _cached(path: str, mtime_ns: int, size: int) -> Constitution:
    return parse_constitution(Path(path))


def _load_cached(path: Path) -> Constitution:
    st = path.stat()
    return _cached(str(path), st.st_mtime_ns, st.st_size).model_copy(deep=True)


def is_builtin(path: Path | None) -> bool:
    """Whether `path` is one of the constitutions shipped with cai-bench."""
    return path is not None and Path(path).resolve().parent == BUILTIN_DIR


def _scan(extra_dirs: Sequence[Path]) -> tuple[dict[str, Constitution], dict[str, Constitution]]:
    """Constitutions by id, the first definition in search order winning, and
    for each id defined again differently, the first such other definition."""
    found: dict[str, Constitution] = {}
    clashes: dict[str, Constitution] = {}
    for f in candidate_files(extra_dirs):
        c = _load_cached(f)
        prev = found.get(c.id)
        if prev is None:
            found[c.id] = c
        elif c.id not in clashes and prev.model_dump() != c.model_dump():
            clashes[c.id] = c
    return found, clashes


def _clash_message(first: Constitution, other: Constitution) -> str:
    return f"constitution id {first.id!r} is defined twice, differently: {first.path} and {other.path}"


def _warn_clash(first: Constitution, other: Constitution) -> None:
    key = (first.id, str(first.path), str(other.path))
    if key not in _warned:
        _warned.add(key)
        fix = "built-in ids cannot be redefined; rename" if is_builtin(first.path) else "rename one; listed:"
        log.warning("%s (%s %s)", _clash_message(first, other), fix,
                    other.path if is_builtin(first.path) else first.path)


def _index(extra_dirs: Sequence[Path]) -> dict[str, Constitution]:
    """Every constitution by id; each clash is one warning, never an error here,
    so one stray file cannot stop every command."""
    found, clashes = _scan(extra_dirs)
    for cid, other in clashes.items():
        _warn_clash(found[cid], other)
    return found


def defined_by(cid: str, extra_dirs: Sequence[Path] = ()) -> list[Path]:
    """The files on the search path that define constitution `cid` (broken files skipped)."""
    out = []
    for f in candidate_files(extra_dirs):
        try:
            if _load_cached(f).id == cid:
                out.append(f)
        except UserError:
            continue
    return out


def check_new_id(cid: str, dest: Path) -> None:
    """Refuse a new constitution id that is built in or that another file on the
    search path defines: once written, the clash would make the id ambiguous
    (`dest`, the file about to be written or replaced, does not count)."""
    here = Path(dest).expanduser().resolve()
    for f in defined_by(cid):
        if f.resolve() == here:
            continue
        what = "is built in" if is_builtin(f) else "is already defined"
        raise UserError(f"constitution id {cid!r} {what} ({f}); choose another --id")


def looks_like_path(s: str) -> bool:
    """True when `s` names a constitution file rather than an id."""
    return s.endswith(_SUFFIXES) or "/" in s or "\\" in s or s.startswith(".") or is_file(s)


def load_constitution(id_or_path: str, extra_dirs: Sequence[Path] = ()) -> Constitution:
    """A constitution by id (searched) or by YAML file path."""
    s = str(id_or_path)
    if looks_like_path(s):
        return parse_constitution(expand_user(s))
    if not ID_RE.fullmatch(s):
        raise UserError(f"constitution id {s!r} must match [a-z0-9_]+ (or give a .yaml file path)")
    found, clashes = _scan(extra_dirs)
    if s not in found:
        raise UserError(f"unknown constitution {s!r}; known: {', '.join(sorted(found)) or 'none'}")
    if s in clashes:
        if not is_builtin(found[s].path):  # two user files: which one is meant is the user's call
            raise UserError(f"{_clash_message(found[s], clashes[s])}; rename one")
        _warn_clash(found[s], clashes[s])  # a built-in is never shadowed: its tasks keep working
    return found[s]


def list_constitutions(extra_dirs: Sequence[Path] = ()) -> list[Constitution]:
    """Every constitution on the search path, built-ins first."""
    return list(_index(extra_dirs).values())


def validate_files(paths: Sequence[Path]) -> list[str]:
    """Every problem in every file (`file:line: field: reason`); empty if all are valid."""
    problems: list[str] = []
    for p in paths:
        p = Path(p)
        try:
            data = load_yaml(p)
        except UserError as exc:
            problems.append(exc.message)
            continue
        if not isinstance(data, dict):
            problems.append(f"{p}:1: (top level): expected a mapping with id, name, culture, principles")
            continue
        try:
            Constitution.model_validate(plain(data))
        except ValidationError as exc:
            problems.extend(validation_problems(p, exc, data))
    return problems
