"""The task schema (docs/constitutions_and_tasks.md, "Tasks"): a constitution id plus
prompt records and default generation settings, and the task's kind (`output_type`, as in
lm-eval): how a run answers and scores it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from cai_bench.constitutions import check_id
from cai_bench.metric_roles import ANALYSES, METRIC_KEY_RE, check_role
from cai_bench.tasks.hhh import VIEWS as HHH_VIEWS

PROMPT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
ID_RE_SUFFIX = re.compile(r"^[a-z0-9_]*$")
GROUP = "cai_bench"  # lm-eval group name of an export (`cai_bench.yaml`)
# Names an export writes besides the tasks' own files: a task with one of these
# ids would overwrite them (or clash with the group in lm-eval's registry).
RESERVED_TASK_IDS = frozenset({GROUP, "cai_bench_metric"})
# A task's kind, named as lm-eval's `output_type`: `generate_until` tasks are answered by generation
# and scored by the scorers; `multiple_choice` tasks are decided by the model's log-likelihoods.
GENERATE_UNTIL = "generate_until"
MULTIPLE_CHOICE = "multiple_choice"
OUTPUT_TYPES = (GENERATE_UNTIL, MULTIPLE_CHOICE)
# Where a multiple_choice task's items come from (their data is found at run time, not vendored):
# the CAI paper's HHH items, in the lettered view or the full-response view (cai_bench.tasks.hhh).
ITEM_SOURCES = HHH_VIEWS


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


def lm_eval_gen_kwargs(max_new_tokens: int, temperature: float, top_p: float) -> dict[str, Any]:
    """lm-eval `generation_kwargs` for these settings: greedy at temperature 0, else sampled
    (shared by the exported task folders and `run`, so both generate alike)."""
    kw: dict[str, Any] = {"until": [], "max_gen_toks": max_new_tokens}
    if temperature > 0:
        kw.update(do_sample=True, temperature=temperature, top_p=top_p)
    else:
        kw.update(do_sample=False, temperature=0.0)
    return kw


class GenerationDefaults(BaseModel):
    """Default sampling for a task (greedy, 256 new tokens)."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)


def _metric_key(key: str) -> str:
    if not METRIC_KEY_RE.fullmatch(key):
        raise ValueError(f"metric key {key!r} must be scorer.metric (e.g. judge.refused)")
    return key


class TaskMetric(BaseModel):
    """What one scorer metric is on this task's rows, over what its scorer declares:
    `role` (see cai_bench.metric_roles.ROLES) and whether it enters the composite."""

    model_config = ConfigDict(extra="forbid")

    role: str | None = None
    composite: bool | None = None

    @field_validator("role")
    @classmethod
    def _role(cls, v: str | None) -> str | None:
        return check_role(v)

    @model_validator(mode="after")
    def _something(self) -> "TaskMetric":
        if self.role is None and self.composite is None:
            raise ValueError("declares nothing: give role and/or composite")
        return self


class Task(BaseModel):
    """A constitution task; `path` is its folder when loaded from disk (not dumped)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    constitution: str
    culture: str
    description: str = ""
    source: str = ""
    license: str = ""
    # The task's kind (lm-eval's `output_type`); validated before `items` and `prompts`, which depend on it.
    output_type: str = GENERATE_UNTIL
    # multiple_choice only: the item source (ITEM_SOURCES) its items are read from when it runs.
    items: str | None = Field(default=None, validate_default=True)
    # generate_until: one or more prompts; multiple_choice: none (its items come from `items`).
    prompts: list[PromptRecord] = Field(default_factory=list, validate_default=True)
    generation: GenerationDefaults = GenerationDefaults()
    # Report analyses the task asks for (cai_bench.metric_roles.ANALYSES); `refusal`: refusal
    # rates on its safe (expect comply) and unsafe (expect refuse) prompts, from metrics with role refusal.
    analyses: list[str] = Field(default_factory=list)
    # Roles / composite membership of scorer metrics on this task's rows, keyed `scorer.metric`:
    # added to, or put in place of, what the scorer declares (e.g. a task whose `judge.score` is a
    # behaviour check, not a quality score: `judge.score: {composite: false}`).
    metrics: dict[Annotated[str, AfterValidator(_metric_key)], TaskMetric] = Field(default_factory=dict)
    path: Path | None = Field(default=None, exclude=True)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_task_id(v)

    @field_validator("output_type")
    @classmethod
    def _output_type(cls, v: str) -> str:
        if v not in OUTPUT_TYPES:
            raise ValueError(f"unknown task kind; known: {', '.join(OUTPUT_TYPES)}")
        return v

    @field_validator("items")
    @classmethod
    def _items(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("output_type")
        if kind == MULTIPLE_CHOICE and v is None:
            raise ValueError(f"a multiple_choice task names its item source; known: {', '.join(ITEM_SOURCES)}")
        if kind == GENERATE_UNTIL and v is not None:
            raise ValueError("only a multiple_choice task has an item source (a generate_until task has prompts)")
        if v is not None and v not in ITEM_SOURCES:
            raise ValueError(f"unknown item source; known: {', '.join(ITEM_SOURCES)}")
        return v

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, v: list[PromptRecord], info: ValidationInfo) -> list[PromptRecord]:
        kind = info.data.get("output_type")
        if kind == GENERATE_UNTIL and not v:
            raise ValueError("a generate_until task needs at least one prompt")
        if kind == MULTIPLE_CHOICE and v:
            raise ValueError("a multiple_choice task takes its items from `items`, not from prompt records")
        return v

    @field_validator("analyses")
    @classmethod
    def _analyses(cls, v: list[str]) -> list[str]:
        for a in v:
            if a not in ANALYSES:
                raise ValueError(f"unknown analysis {a!r}; known: {', '.join(ANALYSES)}")
        return v


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
    def is_multiple_choice(self) -> bool:
        """Decided by log-likelihoods of its items' choices (no generation, no scorers)."""
        return self.output_type == MULTIPLE_CHOICE

    @property
    def has_references(self) -> bool:
        return any(p.reference for p in self.prompts)

    def prompt(self, prompt_id: str) -> PromptRecord:
        from cai_bench.errors import UserError

        for p in self.prompts:
            if p.id == prompt_id:
                return p
        raise UserError(f"task {self.id!r} has no prompt {prompt_id!r}")
