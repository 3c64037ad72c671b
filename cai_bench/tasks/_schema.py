"""The task schema (DESIGN §2): a constitution id plus prompt records and default
generation settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cai_bench.constitutions import check_id

PROMPT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
ID_RE_SUFFIX = re.compile(r"^[a-z0-9_]*$")
GROUP = "cai_bench"  # lm-eval group name of an export (`cai_bench.yaml`)
# Names an export writes besides the tasks' own files: a task with one of these
# ids would overwrite them (or clash with the group in lm-eval's registry).
RESERVED_TASK_IDS = frozenset({GROUP, "cai_bench_metric"})


def check_task_id(v: str) -> str:
    """A task id: [a-z0-9_]+ and not one of the names an lm-eval export reserves."""
    v = check_id(v, "task id")
    if v in RESERVED_TASK_IDS:
        raise ValueError(f"task id {v!r} is reserved (lm-eval exports use it for their own files); choose another")
    return v


def check_prompt_id(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str) or not PROMPT_ID_RE.fullmatch(v) or ".." in v:
        raise ValueError(f"prompt id {v!r} must be letters, digits, '_', '-', '.', ':' (no '/', no '..')")
    return v


class PromptRecord(BaseModel):
    """One prompt; `reference` is the constitution-aligned answer (similarity target)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    prompt: str
    principle_id: str | None = None
    reference: str | None = None
    rejected: str | None = None
    category: str | None = None
    expect: Literal["refuse", "comply"] = "refuse"

    _v_id = field_validator("id", mode="before")(classmethod(lambda cls, v: check_prompt_id(v)))

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt is empty")
        return v

    @field_validator("principle_id", mode="before")
    @classmethod
    def _pid(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if v == "":
            return None
        return v

    @field_validator("reference", "rejected", "category", mode="before")
    @classmethod
    def _empty_none(cls, v: Any) -> Any:
        return None if v == "" else v


class GenerationDefaults(BaseModel):
    """Default sampling for a task (greedy, 256 new tokens)."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)


class Task(BaseModel):
    """A constitution task; `path` is its folder when loaded from disk (not dumped)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    constitution: str
    culture: str
    description: str = ""
    source: str = ""
    license: str = ""
    prompts: list[PromptRecord] = Field(min_length=1)
    generation: GenerationDefaults = GenerationDefaults()
    # Report analyses the task asks for; `refusal`: refusal rates on its safe (expect comply)
    # and unsafe (expect refuse) prompts, from scorer metrics declaring role refusal.
    analyses: list[Literal["refusal"]] = Field(default_factory=list)
    path: Path | None = Field(default=None, exclude=True)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_task_id(v)

    @field_validator("constitution")
    @classmethod
    def _cid(cls, v: str) -> str:
        return check_id(v, "constitution id")

    @model_validator(mode="after")
    def _unique(self) -> "Task":
        seen: set[str] = set()
        for p in self.prompts:
            if p.id in seen:
                raise ValueError(f"duplicate prompt id {p.id!r}")
            seen.add(p.id)
        return self

    @property
    def has_references(self) -> bool:
        return any(p.reference for p in self.prompts)

    def prompt(self, prompt_id: str) -> PromptRecord:
        from cai_bench.errors import UserError

        for p in self.prompts:
            if p.id == prompt_id:
                return p
        raise UserError(f"task {self.id!r} has no prompt {prompt_id!r}")
