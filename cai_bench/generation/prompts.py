"""Where red-team prompts come from: a task id/dir, or a prompts file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cai_bench.errors import UserError


@dataclass(frozen=True)
class PromptItem:
    id: str
    prompt: str
    category: str | None = None


def _auto_id(text: str) -> str:
    return "p" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _from_obj(obj, where: str) -> PromptItem:
    if isinstance(obj, str):
        return PromptItem(_auto_id(obj), obj)
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected an object with a 'prompt' field or a string")
    text = obj.get("prompt")
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: field 'prompt' is missing or empty")
    pid = obj.get("id", obj.get("idx"))
    return PromptItem(str(pid) if pid is not None else _auto_id(text), text, obj.get("category"))


def load_prompts_file(path: Path) -> list[PromptItem]:
    """`.jsonl` (one object per line), `.json` (a list), or `.txt` (one prompt per line)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read prompts ({exc})") from None
    items: list[PromptItem] = []
    if path.suffix == ".txt":
        items = [PromptItem(_auto_id(line.strip()), line.strip()) for line in raw.splitlines() if line.strip()]
    elif path.suffix == ".json":
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise UserError(f"{path}: invalid JSON ({exc})") from None
        if not isinstance(data, list):
            raise UserError(f"{path}: expected a JSON list of prompts")
        items = [_from_obj(o, f"{path}: item {i}") for i, o in enumerate(data)]
    else:
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise UserError(f"{path}: line {n}: invalid JSON ({exc})") from None
            items.append(_from_obj(obj, f"{path}: line {n}"))
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
