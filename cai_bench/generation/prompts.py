"""Where red-team prompts come from: a task id/dir, or a prompts file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cai_bench.errors import UserError
from cai_bench.io import parse_json, read_jsonl, read_text


@dataclass(frozen=True)
class PromptItem:
    id: str
    prompt: str
    category: str | None = None


def _auto_id(text: str) -> str:
    return "p" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _from_obj(obj, where: str) -> PromptItem:
    """`where` is `file:line` (or `file: item N`); errors add the field and reason."""
    if isinstance(obj, str):
        if not obj.strip():
            raise UserError(f"{where}: prompt: empty")
        return PromptItem(_auto_id(obj), obj)
    if not isinstance(obj, dict):
        raise UserError(f"{where}: (record): expected an object with a 'prompt' field or a string")
    text = obj.get("prompt")
    if "prompt" not in obj:
        raise UserError(f"{where}: prompt: missing required field")
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: prompt: must be a non-empty string (got {text!r:.40})")
    pid = obj.get("id", obj.get("idx"))
    if pid is not None and not isinstance(pid, (str, int)):
        raise UserError(f"{where}: id: must be a string or an integer (got {type(pid).__name__})")
    category = obj.get("category")
    if category is not None and not isinstance(category, str):
        raise UserError(f"{where}: category: must be a string (got {type(category).__name__})")
    return PromptItem(str(pid) if pid is not None else _auto_id(text), text, category)


def load_prompts_file(path: Path) -> list[PromptItem]:
    """`.jsonl` (one object per line), `.json` (a list), or `.txt` (one prompt per line)."""
    items: list[PromptItem] = []
    if path.suffix == ".txt":
        raw = read_text(path)
        items = [PromptItem(_auto_id(line.strip()), line.strip()) for line in raw.splitlines() if line.strip()]
    elif path.suffix == ".json":
        data = parse_json(read_text(path), str(path))  # syntax, nesting and lone surrogates named
        if not isinstance(data, list):
            raise UserError(f"{path}:1: (top level): expected a JSON list of prompts")
        items = [_from_obj(o, f"{path}: item {i}") for i, o in enumerate(data)]
    else:
        items = [_from_obj(obj, f"{path}:{n}") for n, obj in read_jsonl(path, what="prompts", objects=False)]
    seen: set[str] = set()
    unique = []
    for it in items:
        if it.id not in seen:
            seen.add(it.id)
            unique.append(it)
    if not unique:
        raise UserError(f"{path}: no prompts found")
    return unique


def load_prompts(source: str, n: int | None = None) -> tuple[list[PromptItem], str]:
    """Prompts from a file or a task; returns them (first `n`) and a label for the source."""
    path = Path(source).expanduser()
    if path.is_file():
        items, label = load_prompts_file(path), str(path)
    else:
        from cai_bench.tasks import load_task

        task = load_task(source)
        if task.is_multiple_choice:  # its items are answer pairs scored by log-likelihood, not prompts
            raise UserError(f"task {task.id!r} is {task.output_type}: it has no prompts to answer; give a "
                            "generate_until task or a prompts file")
        items = [PromptItem(p.id, p.prompt, p.category) for p in task.prompts]
        label = task.id
    return (items[:n] if n else items), label


def default_max_new_tokens(source: str) -> int:
    """The generation length when none is given: a task's own default, else the
    task schema's (one default everywhere, so `generate` and `run` agree)."""
    from cai_bench.tasks import GenerationDefaults

    if not Path(source).expanduser().is_file():
        from cai_bench.tasks import load_task

        return load_task(source).generation.max_new_tokens
    return GenerationDefaults().max_new_tokens
