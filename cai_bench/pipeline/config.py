"""The pipeline config: one YAML (or flags) naming everything the CAI loop needs.

Profiles give the defaults; the file overrides the profile, flags override the
file. Example (`bolivia.yaml`):

    profile: cpu-small
    constitution: bolivia.yaml          # or `task: cai_south_africa`
    prompts: bolivia_prompts.jsonl
    out: runs/bolivia
    split: {eval_fraction: 0.33, seed: 0, max_train: 64, max_eval: 32}
    data: {source: generate, generator: bundled:smollm2-135m-instruct}
    sft: {recipe: smollm2-135m-cpu-sft, set: ["learning_rate=1e-4"]}
    dpo: {recipe: smollm2-135m-cpu-dpo}
    eval: {tasks: [cai_romania, xstest], limit: 16, scorers: [similarity], hhh_limit: 100}

Every problem is reported as `file:line: field: reason`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cai_bench.bootstrap_settings import MIN_N_BOOT, N_BOOT
from cai_bench.defaults import GENERATION, SYNTHESIS
from cai_bench.errors import UserError
from cai_bench.io import did_you_mean, field_path, known_fields
from cai_bench.models.vllm_server import VllmSettings

PROFILES: dict[str, dict[str, Any]] = {
    # the bundled SmolLM2 as student; bundled GPT-4o data for built-in cultures; small sizes
    "cpu-small": {
        "student": "bundled:smollm2-135m-instruct",
        "split": {"max_train": 64, "max_eval": 32},
        # the CPU recipes train without a trainer eval split (eval_strategy no): every kept row trains
        # a new culture's data from the 135M generator: the revision asked in a fresh turn for the answer only,
        # after two worked examples from the packaged GPT-4o data, and two sampled retries of a revision the
        # gate drops (issue 25; docs/pipeline.md "A new culture offline")
        "data": {"max_new_tokens": 192, "test_size": 0.0, "demonstrations": 2, "answer_only": True, "retries": 2},
        # the CPU recipes as re-tuned by the sweep in docs/pipeline.md (SFT lr 2e-4, DPO lr 5e-5 / beta 0.1,
        # 32 steps each: one epoch of 64 prompts at batch 2)
        "sft": {"recipe": "smollm2-135m-cpu-sft", "set": []},
        "dpo": {"recipe": "smollm2-135m-cpu-dpo", "set": []},
        # HHH: only the response view: SmolLM2 answers the lettered view at chance and it costs twice the
        # tokens (measured: ~80k tokens per checkpoint for both views of 100 items, ~28k for this one)
        # batch 32: the 32 held-out prompts in one generate call (2.2x faster than 8 on 2 cores, measured)
        "eval": {"limit": 16, "max_new_tokens": 96, "hhh_limit": 100, "batch_size": 32,
                 "hhh_views": ["hhh_alignment_response"]},
    },
    # a 7B instruct student with the handbook QLoRA recipes (needs a CUDA GPU)
    "gpu-7b": {
        "student": "hf:mistralai/Mistral-7B-Instruct-v0.1",
        "split": {},
        "data": {"max_new_tokens": 512},
        "sft": {"recipe": "mistral-7b-sft"},
        "dpo": {"recipe": "mistral-7b-dpo"},
        "eval": {"limit": 100, "max_new_tokens": 256, "hhh_limit": None, "batch_size": 16},
    },
}
# built-in culture task -> its folder of GPT-4o CAI data under bluedot_cai/
BUNDLED_DATA = {"cai_south_africa": "sa", "cai_romania": "ro"}
# data settings that only shape data a model writes (data.source generate); the bundled rows are fixed
GENERATE_ONLY_DATA = frozenset({"generator", "selection", "max_new_tokens", "batch_size", "engine", "demonstrations",
                                "answer_only", "retries"})
CULTURE_TASKS = ("cai_south_africa", "cai_romania")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitSettings(_Strict):
    """Seeded split, stratified by principle, into train (CAI data) and held-out eval."""

    eval_fraction: float = Field(0.33, gt=0.0, lt=1.0)
    seed: int = 0
    max_train: int | None = Field(None, ge=1)
    max_eval: int | None = Field(None, ge=1)


class SynthesizeSettings(_Strict):
    """Prompts written by a model from the constitution (`tasks synthesize`), when no prompts file is given."""

    generator: str | None = None  # any chat-model spec; None: data.generator, else the student
    per_principle: int = Field(SYNTHESIS.per_principle, ge=1)
    max_new_tokens: int = Field(SYNTHESIS.max_new_tokens, ge=16)
    temperature: float = Field(SYNTHESIS.temperature, ge=0.0)
    retries: int = Field(SYNTHESIS.retries, ge=0)
    batch_size: int = Field(8, ge=1)  # not CHAT.batch_size: the task-stage key of existing pipelines would change


class DataSettings(_Strict):
    """Where the CAI training data comes from, and the quality gate."""

    source: Literal["bundled", "generate"] | None = None  # None: bundled for built-in cultures, else generate
    generator: str | None = None  # any chat-model spec; None: the student
    bundled_dir: str | None = None  # folder holding bluedot_cai/; None: $CAI_BENCH_SHARED_DATA, else the packaged copy
    selection: Literal["random", "contextual"] = GENERATION.selection
    max_new_tokens: int = Field(256, ge=1)
    batch_size: int = Field(8, ge=1)
    engine: Literal["hf", "vllm"] = "hf"  # vllm: the generator on a vLLM server (eval.vllm says how it starts)
    test_size: float = Field(GENERATION.test_size, ge=0.0, lt=1.0)
    demonstrations: int = Field(0, ge=0)  # few-shot exchanges from the packaged GPT-4o data (generate only)
    answer_only: bool = False  # the revision is asked in a fresh turn (principle + request) for the answer only
    retries: int = Field(0, ge=0)  # second pass: re-ask (sampled, seeded) a revision the quality gate drops
    min_kept_fraction: float = Field(0.5, ge=0.0, le=1.0)
    min_kept: int = Field(16, ge=0)
    allow_low_quality: bool = False
    # principle ids left out of the training data (prompts of them, rows critiqued by them); the held-out
    # eval keeps every principle, so the report shows what dropping one moves
    drop_principles: list[str] = Field(default_factory=list)


class TrainSettings(_Strict):
    recipe: str = ""
    set: list[str] = Field(default_factory=list)  # `key=value` recipe overrides, as `train --set`


class EvalSettings(_Strict):
    tasks: list[str] | None = None  # regression tasks; None: the other built-in cultures and xstest
    limit: int | None = Field(None, ge=1)  # prompts per regression task (the held-out part is always whole)
    scorers: list[Any] = Field(default_factory=lambda: ["similarity"])
    max_new_tokens: int = Field(128, ge=1)
    batch_size: int = Field(8, ge=1)
    hhh: bool = True
    hhh_limit: int | None = Field(None, ge=1)
    # hhh_alignment: the paper's lettered prompt; hhh_alignment_response: each answer as the assistant turn
    hhh_views: list[Literal["hhh_alignment", "hhh_alignment_response"]] = Field(
        default_factory=lambda: ["hhh_alignment", "hhh_alignment_response"], min_length=1)
    hhh_path: str | None = None
    # task ids or folders evaluated whole (no eval.limit), like the held-out part: an experiment over
    # cultures puts the other cultures' held-out parts here (the transfer matrix)
    whole_tasks: list[str] = Field(default_factory=list)
    # log-likelihood batches hold seq x vocab logits per row (~0.2 GB for a 1000-token HHH item on SmolLM2)
    hhh_batch_size: int = Field(8, ge=1)
    n_boot: int = Field(N_BOOT, ge=MIN_N_BOOT)
    store: str | None = None  # results store path or URL (default <out>/eval/results.sqlite); may be shared
    # who generates the eval's answers: transformers, a vLLM server (base + SFT/DPO adapters as LoRA modules),
    # or auto: vLLM where installed and measured faster here (cai_bench.models.engine_choice; docs/pipeline.md)
    engine: Literal["auto", "hf", "vllm"] = "auto"
    vllm: VllmSettings = Field(default_factory=VllmSettings)  # how the vLLM server starts (generation.vllm of `run`)


class PipelineConfig(_Strict):
    out: Path = Path("runs/pipeline")
    profile: Literal["cpu-small", "gpu-7b"] = "cpu-small"
    task: str | None = None
    constitution: str | None = None
    prompts: str | None = None
    synthesize: SynthesizeSettings | None = None  # with `constitution` and no `prompts`
    student: str = ""
    seed: int = 0
    train_seed: int | None = None  # the SFT and DPO recipes' seed; None: the recipe's own (a seed axis varies it)
    split: SplitSettings = Field(default_factory=SplitSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    sft: TrainSettings = Field(default_factory=TrainSettings)
    dpo: TrainSettings = Field(default_factory=TrainSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    allow_overlap: bool = False
    allow_no_verdict: bool = False  # train although the pre-flight finds no metric for the culture under test

    @model_validator(mode="after")
    def _source(self) -> "PipelineConfig":
        if not self.task and not self.constitution:
            raise ValueError("give `task` (a built-in or task folder), or `constitution` with `prompts` "
                             "(or `synthesize` to have a model write them)")
        if self.task and (self.constitution or self.prompts or self.synthesize):
            raise ValueError("give either `task` or `constitution` (+ `prompts` or `synthesize`), not both")
        if self.prompts and self.synthesize:
            raise ValueError("give either `prompts` or `synthesize`, not both")
        if self.constitution and not self.prompts and self.synthesize is None:
            self.synthesize = SynthesizeSettings()  # no prompts: a model writes them
        if self.data.source == "bundled" and self.task not in BUNDLED_DATA:
            raise ValueError(f"data.source bundled exists only for {', '.join(BUNDLED_DATA)} (got task {self.task!r})")
        return self

    @property
    def data_source(self) -> str:
        return self.data.source or ("bundled" if self.task in BUNDLED_DATA else "generate")

    @property
    def generator(self) -> str:
        return self.data.generator or self.student

    @property
    def synthesizer(self) -> str | None:
        if self.synthesize is None:
            return None
        return self.synthesize.generator or self.generator

    def eval_scorer_ids(self) -> list[str]:
        """The eval's scorer ids, read as `run` reads `scorers:` (an id, or a mapping with `id`)."""
        from cai_bench.harness.config import RunConfig, format_validation

        try:
            return [e.id for e in RunConfig(scorers=list(self.eval.scorers)).scorers]
        except ValidationError as exc:
            raise UserError(format_validation("eval.scorers", exc)) from None

    def regression_tasks(self) -> list[str]:
        if self.eval.tasks is not None:
            return list(self.eval.tasks)
        return [t for t in CULTURE_TASKS if t != self.task] + ["xstest"]


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_config(raw: dict[str, Any], *, source: str = "pipeline options", lines: dict | None = None) -> PipelineConfig:
    """Profile defaults under `raw`, validated; errors name source, line and field."""
    profile = raw.get("profile", "cpu-small")
    if not isinstance(profile, str) or profile not in PROFILES:
        where = f"{source}:{lines['profile']}" if lines and "profile" in lines else source
        raise UserError(f"{where}: profile: unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    data = _merge(PROFILES[profile], raw)
    try:
        cfg = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        parts = []
        for e in exc.errors():
            loc = field_path(e["loc"]) if e["loc"] else "(config)"
            top = str(e["loc"][0]) if e["loc"] else ""
            where = f"{source}:{lines[top]}" if lines and top in lines else source
            msg = {"extra_forbidden": "unknown field", "missing": "required field missing"}.get(e["type"], e["msg"])
            if e["type"] == "extra_forbidden" and e["loc"]:
                msg += did_you_mean(str(e["loc"][-1]), known_fields(PipelineConfig, e["loc"]))
            parts.append(f"{where}: {loc}: {msg}")
        raise UserError("; ".join(parts)) from None
    if cfg.data.drop_principles:
        where = f"{source}:{lines['data']}" if lines and "data" in lines else source
        check_drop_principles(cfg, where)
    return cfg


def check_drop_principles(cfg: PipelineConfig, where: str) -> None:
    """data.drop_principles names principles of the culture's constitution (a typo would silently drop nothing)."""
    from cai_bench.constitutions import load_constitution
    from cai_bench.tasks import load_task, task_constitution

    try:
        constitution = task_constitution(load_task(cfg.task)) if cfg.task else load_constitution(cfg.constitution)
    except UserError:
        return  # the task or constitution itself is bad: check_inputs says so before anything is written
    known = list(constitution.principle_ids)
    for pid in cfg.data.drop_principles:
        if pid not in known:
            raise UserError(f"{where}: data.drop_principles: {pid!r} is not a principle of {constitution.id!r}"
                            f"{did_you_mean(pid, known)}; known: {', '.join(known)}")
    if len(set(cfg.data.drop_principles)) == len(known):
        raise UserError(f"{where}: data.drop_principles: drops every principle of {constitution.id!r}: "
                        "nothing would be left to train on")


def load_config_file(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The raw mapping of a pipeline YAML and its top-level key lines; relative
    paths in it resolve against the file's folder."""
    from cai_bench.io import Located, load_yaml, plain

    path = Path(path)
    data = load_yaml(path)  # the one input layer: UTF-8, line numbers, bounded aliases
    if data is None:
        data = Located({}, {}, 1)
    if not isinstance(data, Located):
        raise UserError(f"{path}:1: a pipeline config must be a mapping (task:, profile:, out:, ...)")
    raw, lines = plain(data), {k: v for k, v in data.lines.items() if isinstance(k, str)}
    return resolve_relative(raw, path.resolve().parent), lines


def resolve_relative(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative paths of a pipeline mapping (constitution, prompts, out, a task folder) resolved
    against `base`, the folder of the file that holds them."""
    from cai_bench.io import expand_user, is_dir, is_file

    for key in ("constitution", "prompts", "out", "task"):
        v = raw.get(key)
        if isinstance(v, str) and (key == "out" or "/" in v or v.endswith((".yaml", ".yml", ".jsonl", ".csv"))):
            if not expand_user(v).is_absolute() and (key == "out" or is_file(base / v) or is_dir(base / v)):
                raw[key] = str(base / v)
    return raw
