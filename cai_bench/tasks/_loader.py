"""Find and load tasks. A task is a folder with `task.yaml` (id, constitution,
culture?, description, source, license, output_type?, generation, analyses?, prompts: prompts.jsonl)
and its prompts as jsonl (a `multiple_choice` task names an item source, `items:`, instead); an optional `constitution.yaml` beside it is the task's own
constitution. Search order: built-ins, `extra_dirs`, `$CAI_BENCH_PATH`, then
`$CAI_BENCH_HOME/tasks`. Task ids are one namespace: `tasks new` refuses a
built-in id or one another folder holds; a clash met anyway (a folder dropped
into a search folder) is one warning naming both folders, and the first in
search order is used: a built-in is never shadowed. Only asking for an id that
two user folders define differently is an error. A broken task folder is skipped with a
warning when listing, so one bad user task cannot hide the others; asking for
it by id or folder raises its error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cai_bench.constitutions import ID_RE, Constitution, load_constitution, parse_constitution
from cai_bench.errors import UserError
from cai_bench.io import expand_user, format_validation, is_dir, is_file, line_of, load_yaml, plain, read_jsonl, validate_rows
from cai_bench.paths import cai_bench_home, search_path_entries
from cai_bench.tasks._schema import MULTIPLE_CHOICE, PromptRecord, Task

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
TASK_FILE = "task.yaml"
PROMPTS_FILE = "prompts.jsonl"
CONSTITUTION_FILE = "constitution.yaml"

log = logging.getLogger("cai_bench.tasks")


def search_dirs(extra_dirs: Sequence[Path] = ()) -> list[Path]:
    return [BUILTIN_DIR, *map(Path, extra_dirs), *search_path_entries(), cai_bench_home() / "tasks"]


def task_folders(extra_dirs: Sequence[Path] = ()) -> list[Path]:
    """Every folder holding a task.yaml on the search path, in priority order."""
    seen: set[Path] = set()
    out: list[Path] = []
    for d in search_dirs(extra_dirs):
        d = Path(d).expanduser()
        if not d.is_dir():
            continue
        found = [d / TASK_FILE] if (d / TASK_FILE).is_file() else []
        found += sorted(d.glob(f"*/{TASK_FILE}")) + sorted(d.glob(f"tasks/*/{TASK_FILE}"))
        for f in found:
            r = f.parent.resolve()
            if r not in seen:
                seen.add(r)
                out.append(f.parent)
    return out


def read_prompts_jsonl(path: Path) -> list[PromptRecord]:
    """Prompt records from jsonl; each problem named by file:line and field."""
    return validate_rows(path, read_jsonl(path, what="prompts"), PromptRecord)


def _task_constitution(folder: Path, cid: str, extra_dirs: Sequence[Path]) -> Constitution:
    own = folder / CONSTITUTION_FILE
    if own.is_file():
        c = parse_constitution(own)
        if c.id != cid:
            raise UserError(f"{own}: id {c.id!r} does not match the task's constitution {cid!r}")
        return c
    return load_constitution(cid, extra_dirs=[*extra_dirs, folder.parent])


def task_constitution(task: Task) -> Constitution:
    """The constitution a loaded task was checked against: its folder's own
    `constitution.yaml` first, then the usual search (user tasks may use either)."""
    if task.path is None:
        return load_constitution(task.constitution)
    return _task_constitution(Path(task.path), task.constitution, ())


def _resolve_constitution(tfile: Path, data: Any, cid: str, extra_dirs: Sequence[Path]) -> Constitution:
    """The task's constitution; a failure is re-raised naming the task file and
    field, since the constitution loader's message does not say which task asked."""
    try:
        return _task_constitution(tfile.parent, cid, extra_dirs)
    except UserError as exc:
        line = line_of(data, ("constitution",))
        where = f"{tfile}:{line}" if line else str(tfile)
        raise UserError(f"{where}: constitution: {exc.message}", exit_code=exc.exit_code) from None


def check_principles(task: Task, constitution: Constitution, where: str) -> None:
    """Every prompt's principle_id must exist in the constitution."""
    known = set(constitution.principle_ids)
    bad = [(i, p) for i, p in enumerate(task.prompts, start=1) if p.principle_id and p.principle_id not in known]
    if bad:
        shown = "; ".join(f"record {i} (id {p.id!r}): principle_id {p.principle_id!r}" for i, p in bad[:5])
        raise UserError(
            f"{where}: {len(bad)} prompt(s) name a principle that constitution {constitution.id!r} lacks: {shown}"
        )


def parse_task(folder: Path, extra_dirs: Sequence[Path] = ()) -> Task:
    """Load the task in `folder` and check it against its constitution."""
    folder = Path(folder)
    tfile = folder / TASK_FILE
    if not tfile.is_file():
        raise UserError(f"{folder}: not a task folder (no {TASK_FILE})")
    data = load_yaml(tfile)
    if not isinstance(data, dict):
        raise UserError(f"{tfile}:1: (top level): expected a mapping with id, constitution, prompts")
    meta: dict[str, Any] = plain(data)
    # a multiple_choice task reads its items from its item source when it runs, not from prompts.jsonl
    default_prompts = None if meta.get("output_type") == MULTIPLE_CHOICE else PROMPTS_FILE
    prompts_ref = meta.get("prompts", default_prompts)
    if isinstance(prompts_ref, str):
        if "/" in prompts_ref or "\\" in prompts_ref or ".." in prompts_ref:
            line = line_of(data, ("prompts",))
            raise UserError(f"{tfile}:{line}: prompts: {prompts_ref!r} must be a file name inside the task folder")
        meta["prompts"] = [r.model_dump() for r in read_prompts_jsonl(folder / prompts_ref)]
    cid = meta.get("constitution")
    constitution = None
    if isinstance(cid, str) and ID_RE.fullmatch(cid):
        constitution = _resolve_constitution(tfile, data, cid, extra_dirs)
        meta.setdefault("culture", constitution.culture)
    try:
        task = Task.model_validate(meta)
    except ValidationError as exc:
        raise UserError(format_validation(tfile, exc, data)) from None
    if constitution is not None:
        check_principles(task, constitution, str(tfile))
    task.path = folder
    return task


@lru_cache(maxsize=64)
def _cached(folder: str, stamp: tuple, extra: tuple) -> Task:
    return parse_task(Path(folder), [Path(e) for e in extra])


def _stamp(folder: Path) -> tuple:
    return tuple(
        (f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(folder.iterdir()) if f.is_file()
    )


def _load(folder: Path, extra_dirs: Sequence[Path]) -> Task:
    try:
        stamp = _stamp(folder)
    except OSError as exc:
        raise UserError(f"{folder}: cannot read task folder ({exc.strerror})") from None
    return _cached(str(folder), stamp, tuple(str(e) for e in extra_dirs)).model_copy(deep=True)


def declared_id(folder: Path) -> str:
    """The id a (possibly broken) task folder claims, else its folder name."""
    try:
        data = load_yaml(folder / TASK_FILE)
    except UserError:
        return folder.name
    tid = data.get("id") if isinstance(data, dict) else None
    return tid if isinstance(tid, str) else folder.name


def is_builtin_folder(folder: Path | None) -> bool:
    """Whether `folder` is a task shipped with cai-bench."""
    return folder is not None and Path(folder).resolve().parent == BUILTIN_DIR


def builtin_task_ids() -> set[str]:
    """The ids of the built-in tasks (folders and the HHH evaluation), which no user task may take."""
    from cai_bench.tasks.hhh import RESPONSE_TASK_ID, TASK_ID

    ids = {TASK_ID, RESPONSE_TASK_ID}
    for folder in sorted(BUILTIN_DIR.iterdir()):
        if (folder / TASK_FILE).is_file():
            ids.add(declared_id(folder))
    return ids


_warned: set[tuple[str, str, str]] = set()  # clashes already reported in this process


def _clash_message(tid: str, first: Path | None, other: Path | None) -> str:
    return f"task id {tid!r} is defined twice, differently: {first} and {other}"


def _warn_clash(tid: str, first: Path | None, other: Path | None) -> None:
    key = (tid, str(first), str(other))
    if key not in _warned:
        _warned.add(key)
        fix = f"built-in ids cannot be redefined; rename {other}" if is_builtin_folder(first) else \
            f"rename one; listed: {first}"
        log.warning("%s (%s)", _clash_message(tid, first, other), fix)


def _scan(extra_dirs: Sequence[Path], only: str | None = None,
          ) -> tuple[dict[str, Task], dict[Path, UserError], dict[str, Path]]:
    """Loadable tasks by id (the first in search order wins), each broken folder
    with its error, and each id defined again differently with that other folder
    (kept apart so one bad or clashing folder does not stop the rest from loading).
    `only`: just the folders that claim that id (or are named so), so that finding one
    task does not load every other task's prompts (a 100k-prompt user task made
    `tasks show` of any other task 6x slower)."""
    found: dict[str, Task] = {}
    broken: dict[Path, UserError] = {}
    clashes: dict[str, Path] = {}
    for folder in task_folders(extra_dirs):
        if only is not None and only not in (folder.name, declared_id(folder)):
            continue
        try:
            t = _load(folder, extra_dirs)
        except UserError as exc:
            broken[folder] = exc
            continue
        prev = found.get(t.id)
        if prev is None:
            found[t.id] = t
        elif t.id not in clashes and prev.model_dump() != t.model_dump():
            clashes[t.id] = folder
    return found, broken, clashes


def load_task(id_or_dir: str, extra_dirs: Sequence[Path] = ()) -> Task:
    """A task by id (searched) or by folder path. A bare id means the task of
    that id even when the current folder has a subfolder of the same name (an
    output folder, say); such a folder is used only when no task has the id."""
    s = str(id_or_dir)
    if "/" in s or "\\" in s or s.startswith(".") or (is_dir(s) and not ID_RE.fullmatch(s)):
        return _load_folder(s, extra_dirs)
    if not ID_RE.fullmatch(s):
        raise UserError(f"task id {s!r} must match [a-z0-9_]+ (or give a task folder path)")
    found, broken, clashes = _scan(extra_dirs, only=s)
    if s in clashes:
        if not is_builtin_folder(found[s].path):  # two user folders: which one is meant is the user's call
            raise UserError(f"{_clash_message(s, found[s].path, clashes[s])}; rename one")
        _warn_clash(s, found[s].path, clashes[s])  # a built-in is never shadowed
    if s in found:
        return found[s]
    for folder, exc in broken.items():
        if s in (declared_id(folder), folder.name):
            raise exc
    if is_file(Path(s) / TASK_FILE):
        return _load_folder(s, extra_dirs)
    found, _, _ = _scan(extra_dirs)  # the known ids, for the message
    raise UserError(f"unknown task {s!r}; known: {', '.join(sorted(found)) or 'none'}")


def _load_folder(s: str, extra_dirs: Sequence[Path]) -> Task:
    p = expand_user(s)
    if not is_dir(p):
        raise UserError(f"{s}: task folder not found")
    return _load(p, extra_dirs)


def list_tasks(extra_dirs: Sequence[Path] = ()) -> list[Task]:
    """Every loadable task on the search path, built-ins first; each broken
    folder is skipped with a warning naming its file and the reason."""
    found, broken, clashes = _scan(extra_dirs)
    for folder, exc in broken.items():
        log.warning("skipped task %r: %s", declared_id(folder), exc.message)
    for tid, other in clashes.items():
        _warn_clash(tid, found[tid].path, other)
    return list(found.values())
