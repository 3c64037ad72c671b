"""User tasks: turn a user's prompts file (jsonl or csv) into prompt records and
write a task folder atomically (task.yaml + prompts.jsonl [+ constitution.yaml])."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cai_bench.constitutions import load_constitution, parse_constitution
from cai_bench.errors import UserError
from cai_bench.io import join_problems, read_jsonl, read_text, validation_problems
from cai_bench.paths import atomic_directory, cai_bench_home
from cai_bench.tasks._loader import (
    CONSTITUTION_FILE,
    PROMPTS_FILE,
    TASK_FILE,
    declared_id,
    builtin_task_ids,
    check_principles,
    task_folders,
)
from cai_bench.tasks._schema import GENERATE_UNTIL, PromptRecord, Task


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() == ".csv":
        # read_text drops a UTF-8 BOM (spreadsheet exports add one; it would
        # otherwise become part of the first column name)
        text = read_text(path)
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        try:  # the header row is parsed by `fieldnames`: a bad quote there is a csv.Error too
            if not reader.fieldnames:
                raise UserError(f"{path}: empty CSV (no header row)")
            for row in reader:
                if None in row:
                    raise UserError(f"{path}:{reader.line_num}: more values than header columns")
                yield reader.line_num, row
        except csv.Error as exc:
            raise UserError(f"{path}:{max(reader.line_num, 1)}: invalid CSV: {exc}") from None
    elif path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        yield from read_jsonl(path, what="prompts")
    else:
        raise UserError(f"{path}: unsupported prompts file type {path.suffix!r}; use .jsonl or .csv")


def _check_columns(path: Path, line: int, row: dict[str, Any], allowed: list[str]) -> None:
    """Unknown columns are an error, not silently dropped: a misspelt `refrence`
    column would otherwise yield a task without references."""
    unknown = [k for k in row if k not in allowed]
    if unknown:
        raise UserError(
            f"{path}:{line}: unknown column {unknown[0]!r}; allowed: {', '.join(allowed)} "
            "(name yours with --prompt-field, --id-field, --reference-field, --principle-field)"
        )


def read_prompts_file(
    path: Path,
    *,
    prompt_field: str = "prompt",
    reference_field: str | None = None,
    principle_field: str | None = None,
    id_field: str = "id",
    rejected_field: str | None = None,
    category_field: str | None = None,
    expect_field: str | None = None,
) -> list[PromptRecord]:
    """Prompt records from a jsonl/csv file whose columns are named by the `*_field`s.

    Rows without an id get their 1-based row number; default field names
    (`reference`, `principle_id`, ...) are used when present and not overridden.
    Any other column is an error naming file, line (1 for a CSV header) and column.
    """
    path = Path(path)
    fields = {
        "reference": reference_field or "reference",
        "principle_id": principle_field or "principle_id",
        "rejected": rejected_field or "rejected",
        "category": category_field or "category",
        "expect": expect_field or "expect",
    }
    explicit = {k for k, v in
                {"reference": reference_field, "principle_id": principle_field, "rejected": rejected_field,
                 "category": category_field, "expect": expect_field}.items() if v}
    allowed = [prompt_field, id_field, *(c for c in fields.values() if c not in (prompt_field, id_field))]
    is_csv = path.suffix.lower() == ".csv"
    records: list[PromptRecord] = []
    problems: list[str] = []
    for i, (line, row) in enumerate(_rows(path), start=1):
        if prompt_field not in row:
            raise UserError(f"{path}:{line}: missing field {prompt_field!r} (choose it with --prompt-field)")
        if not is_csv or i == 1:
            _check_columns(path, 1 if is_csv else line, row, allowed)
        rec: dict[str, Any] = {"id": row.get(id_field) if row.get(id_field) not in (None, "") else str(i),
                               "prompt": row[prompt_field]}
        for key, col in fields.items():
            if col in row:
                rec[key] = row[col]
            elif key in explicit:
                raise UserError(f"{path}:{line}: missing field {col!r} (given as the {key} field)")
        try:
            records.append(PromptRecord.model_validate(rec))
        except ValidationError as exc:
            problems += validation_problems(path, exc, line=line)
    if problems:
        raise UserError(join_problems(problems))
    if not records:
        raise UserError(f"{path}: no prompts (the prompt set is empty)")
    seen: dict[str, int] = {}
    for n, r in enumerate(records, start=1):
        if r.id in seen:
            raise UserError(f"{path}: duplicate prompt id {r.id!r} (rows {seen[r.id]} and {n})")
        seen[r.id] = n
    return records


def task_yaml(task: Task) -> str:
    """The task.yaml text for `task` (prompts live in prompts.jsonl)."""
    meta = task.model_dump(exclude={"prompts", "path"})
    if meta.get("output_type") == GENERATE_UNTIL and meta.get("items") is None:  # the default kind: unsaid
        meta.pop("output_type")
        meta.pop("items")
    if not meta.get("analyses"):
        meta.pop("analyses", None)
    if meta.get("metrics"):
        meta["metrics"] = {k: {f: x for f, x in v.items() if x is not None} for k, v in meta["metrics"].items()}
    else:
        meta.pop("metrics", None)
    meta["prompts"] = PROMPTS_FILE
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)


def prompts_jsonl(task: Task) -> str:
    return "".join(json.dumps(p.model_dump(exclude_none=True), ensure_ascii=False) + "\n" for p in task.prompts)


def write_task_folder(task: Task, folder: Path, constitution_text: str | None = None) -> None:
    """Write task files into an (empty, temporary) folder."""
    (folder / TASK_FILE).write_text(task_yaml(task), encoding="utf-8")
    (folder / PROMPTS_FILE).write_text(prompts_jsonl(task), encoding="utf-8")
    if constitution_text is not None:
        (folder / CONSTITUTION_FILE).write_text(constitution_text, encoding="utf-8")


def _check_no_clash(constitution, root: Path) -> None:
    """Refuse a copied constitution whose id already means something else on the
    search path: the copy would make that id ambiguous for every later command."""
    from cai_bench.constitutions import list_constitutions

    for other in list_constitutions(extra_dirs=[root]):
        if other.id == constitution.id and other.model_dump() != constitution.model_dump():
            raise UserError(
                f"{constitution.path}: constitution id {constitution.id!r} is already defined differently by "
                f"{other.path}; give your constitution another id"
            )


def _check_task_id_free(tid: str, target: Path, root: Path) -> None:
    """Refuse a task id that is built in or that another folder on the search
    path holds: once written, every listing and run would meet the clash.
    `target` (the folder --force replaces) does not count."""
    if tid in builtin_task_ids():
        raise UserError(f"task id {tid!r} is built in; choose another id")
    here = target.resolve()
    for folder in task_folders([root]):
        if folder.resolve() != here and declared_id(folder) == tid:
            raise UserError(f"task id {tid!r} is already defined ({folder}); choose another id")


def _check_root(root: Path) -> None:
    """Fail early, in one line, when the task root cannot be a folder (it, or a
    folder above it, is a file) instead of a traceback from mkdir later."""
    for p in (root, *root.parents):
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == root else f"is under {p}, which is a file"
                raise UserError(f"{root}: cannot hold task folders: it {what}")
            return


def _copy_source(cid: str, root: Path, constitution_dirs: Sequence[Path]) -> Path | None:
    """The constitution file to copy beside the task when id `cid` is found only
    through `constitution_dirs` (`--constitutions`): later commands run without
    that flag, so the task must carry its constitution to stay loadable."""
    if not constitution_dirs:
        return None
    found = load_constitution(cid, extra_dirs=[*constitution_dirs, root])
    try:
        load_constitution(cid, extra_dirs=[root])
    except UserError:
        return found.path
    return None


def write_user_task(
    task: Task,
    dest_root: Path | None = None,
    constitution_file: Path | None = None,
    *,
    overwrite: bool = False,
    constitution_dirs: Sequence[Path] = (),
) -> Path:
    """Write `task` to `dest_root/<id>/` atomically (default root `$CAI_BENCH_HOME/tasks`).

    With `constitution_file`, that constitution is validated and copied beside
    the task as constitution.yaml; its id must equal `task.constitution`. An id
    resolved only through `constitution_dirs` is copied the same way.
    Principle ids are checked against the constitution before anything is written.
    """
    root = Path(dest_root).expanduser() if dest_root is not None else cai_bench_home() / "tasks"
    _check_root(root)
    task = Task.model_validate(task.model_dump())  # re-validate ids
    if constitution_file is None:
        constitution_file = _copy_source(task.constitution, root, constitution_dirs)
    if constitution_file is not None:
        constitution = parse_constitution(Path(constitution_file))
        if constitution.id != task.constitution:
            raise UserError(
                f"{constitution_file}: constitution id {constitution.id!r} differs from the task's {task.constitution!r}"
            )
        ctext = read_text(Path(constitution_file))
        _check_no_clash(constitution, root)
    else:
        constitution = load_constitution(task.constitution, extra_dirs=[root])
        ctext = None
    check_principles(task, constitution, f"task {task.id!r}")
    target = root / task.id
    if target.exists() and not overwrite:
        raise UserError(f"{target}: task {task.id!r} already exists (use --force to replace it)")
    _check_task_id_free(task.id, target, root)
    try:
        _place(task, target, ctext)
    except OSError as exc:
        raise UserError(f"{target}: cannot write the task folder ({exc.strerror or exc})") from None
    return target


def _place(task: Task, target: Path, ctext: str | None) -> None:
    """Build the folder beside `target` and rename it into place (replacing any old one)."""
    root = target.parent
    if target.exists():
        shutil.rmtree(root / f".{task.id}.new", ignore_errors=True)
        with atomic_directory(root / f".{task.id}.new") as tmp:
            write_task_folder(task, tmp, ctext)
        old = root / f".{task.id}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
        os.rename(root / f".{task.id}.new", target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        with atomic_directory(target) as tmp:
            write_task_folder(task, tmp, ctext)
