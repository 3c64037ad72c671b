"""Content identity of a task's prompts: what a stored answer or score was made from.

Two hashes per prompt, so that an edit redoes exactly the work it invalidates:
- `input_hash`: everything the model under test reads (the prompt text and the
  context around it: system prompt and few-shot turns, of which runs use none
  today; `CONTEXT` names that, so adding one changes every hash). Part of the
  generation key: edit a prompt and it is answered anew.
- `content_hash`: the input plus everything a scorer reads (reference answer,
  principle id and text, expected behaviour, category, and the text of the
  constitution the judge quotes). Part of the score key: edit a reference or a
  principle and the stored answer is kept but scored anew.
Prompt ids are names, never identities: a reused id with new text is new work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cai_bench.hashing import digest as _digest

if TYPE_CHECKING:
    from cai_bench.constitutions import Constitution
    from cai_bench.tasks._schema import PromptRecord, Task

# How a run presents a prompt to the model under test (see harness/generate.py and
# tasks/_export.py: doc_to_text "{{prompt}}", zero-shot, no system message).
CONTEXT = {"system": None, "few_shot": [], "template": "{{prompt}}"}




def constitution_digest(constitution: "Constitution | None") -> str | None:
    """Hash of a constitution's full text (principles, requests, few-shot chats)."""
    if constitution is None:
        return None
    return _digest(constitution.model_dump(mode="json"))


@dataclass(frozen=True)
class PromptIdentity:
    prompt_id: str
    input_hash: str
    content_hash: str


def prompt_identity(p: "PromptRecord", constitution: "Constitution | None") -> PromptIdentity:
    """Both hashes of one prompt under `constitution` (the one its task is checked against)."""
    return _identity(p, _principles(constitution), constitution_digest(constitution))


def _principles(constitution: "Constitution | None") -> dict[str, dict]:
    """Principle id -> its text as hashed (the first of a repeated id, as a search finds it)."""
    out: dict[str, dict] = {}
    for q in constitution.principles if constitution is not None else ():
        out.setdefault(q.id, q.model_dump(mode="json"))
    return out


def _identity(p: "PromptRecord", principles: dict[str, dict], constitution_hash: str | None) -> PromptIdentity:
    input_hash = _digest({"prompt": p.prompt, "context": CONTEXT})
    principle = principles.get(p.principle_id) if p.principle_id else None
    content_hash = _digest({
        "input": input_hash, "reference": p.reference, "principle_id": p.principle_id, "principle": principle,
        "expect": p.expect, "category": p.category, "constitution": constitution_hash,
    })
    return PromptIdentity(p.id, input_hash, content_hash)


def task_identities(task: "Task") -> dict[str, PromptIdentity]:
    """prompt id -> identity for every prompt of `task`, under its own constitution
    (None when it cannot be found: the hashes then say so). The constitution is hashed
    once, not per prompt: a 100k-prompt task took 20 s doing it per prompt."""
    from cai_bench.errors import UserError
    from cai_bench.tasks._loader import task_constitution

    try:
        constitution = task_constitution(task)
    except UserError:
        constitution = None
    principles, constitution_hash = _principles(constitution), constitution_digest(constitution)
    return {p.id: _identity(p, principles, constitution_hash) for p in task.prompts}
