"""Recipe schema: alignment-handbook style YAML, validated by pydantic.

A recipe is data, not code: one flat mapping per training stage. Unknown keys
are an error that names the key, so a typo never silently falls back to a
default. `--set key=value` overrides are parsed as YAML scalars/flow values.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Literal, Sequence

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from cai_bench.errors import UserError
from cai_bench.io import join_problems, load_yaml_mapping, parse_assignment, plain, problem_line

Stage = Literal["sft", "dpo"]
DType = Literal["auto", "bfloat16", "float16", "float32"]


class Recipe(BaseModel):
    """Everything a QLoRA SFT or DPO run needs; field names follow the alignment-handbook."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    stage: Stage | None = Field(None, description="sft or dpo; checked against the command when set")
    description: str = ""
    gpu_recipe: bool = Field(False, description="documented as needing a CUDA GPU")

    # model
    model_name_or_path: str = Field(..., description="any checkpoint spec: bundled:NAME, hf:ORG/NAME, dir, adapter dir")
    torch_dtype: DType = "auto"
    load_in_4bit: bool = True
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_compute_dtype: DType = "bfloat16"
    use_bnb_nested_quant: bool = False
    attn_implementation: str | None = None

    # LoRA
    use_peft: bool = True
    lora_r: int = Field(16, gt=0, validation_alias=AliasChoices("lora_r", "r"))
    lora_alpha: int = Field(16, gt=0)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    lora_target_modules: list[str] | str = Field(
        "all-linear", validation_alias=AliasChoices("lora_target_modules", "target_modules")
    )

    # data
    dataset_mixer: dict[str, float] = Field(..., description="dataset dir or hub id -> fraction of its train split")
    dataset_splits: list[str] = Field(default_factory=lambda: ["train", "test"])
    max_train_samples: int | None = Field(None, gt=0)
    max_eval_samples: int | None = Field(None, gt=0)

    # optimisation
    learning_rate: float = Field(2e-5, gt=0)
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.1, ge=0.0, le=1.0)
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    per_device_train_batch_size: int = Field(2, gt=0)
    per_device_eval_batch_size: int = Field(2, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    gradient_checkpointing: bool = True
    optim: str = "adamw_torch"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = Field(512, gt=0)
    packing: bool = False
    beta: float = Field(0.1, gt=0, description="DPO temperature")
    loss_type: str = "sigmoid"
    precompute_ref_log_probs: bool = Field(
        False, description="DPO: compute the reference's log-probs once per data set (cached beside the output) "
                           "instead of running the reference at every step")
    precompute_ref_batch_size: int | None = Field(None, gt=0, description="pairs per reference batch; "
                                                  "None: per_device_train_batch_size")
    ref_log_probs_cache_dir: str | None = Field(None, description="where the precomputed reference log-probs "
                                                "go; None: <output_dir>/ref_logps")
    bf16: bool | None = Field(None, description="None: use bf16 where the GPU supports it")
    fp16: bool = False
    seed: int = 42

    # bookkeeping
    output_dir: str = Field(..., description="where the adapter, tokenizer, checkpoints and cai_bench.json go")
    logging_steps: int = Field(1, gt=0)
    save_steps: int = Field(50, gt=0)
    save_total_limit: int | None = 2
    eval_strategy: Literal["no", "steps", "epoch"] = "no"
    eval_steps: int | None = None
    report_to: list[str] | str = "none"

    @field_validator("dataset_mixer")
    @classmethod
    def _mixer(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("needs at least one dataset (dir or hub id -> fraction)")
        for name, frac in v.items():
            if not 0 < frac <= 1:
                raise ValueError(f"fraction for {name!r} must be in (0, 1], got {frac}")
        return v

    @field_validator("dataset_splits")
    @classmethod
    def _splits(cls, v: list[str]) -> list[str]:
        if not 1 <= len(v) <= 2:
            raise ValueError("give [train_split] or [train_split, eval_split]")
        return v

    @field_validator("report_to")
    @classmethod
    def _report_to(cls, v: list[str] | str) -> list[str]:
        items = [v] if isinstance(v, str) else list(v)
        return [] if items in ([], ["none"]) else items


_ALIASES = {"r": "lora_r", "target_modules": "lora_target_modules"}


def builtin_recipe_dir() -> Path:
    return Path(str(importlib.resources.files("cai_bench.training") / "recipes"))


def list_recipes() -> dict[str, Path]:
    """Built-in recipe name -> YAML path."""
    return {p.stem: p for p in sorted(builtin_recipe_dir().glob("*.yaml"))}


def load_recipe(name_or_path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Load a recipe by built-in name or YAML path, apply `key=value` overrides, validate."""
    path = Path(name_or_path).expanduser()
    builtins = list_recipes()
    if not path.is_file():
        if str(name_or_path) in builtins:
            path = builtins[str(name_or_path)]
        else:
            known = ", ".join(builtins) or "none"
            raise UserError(f"recipe {str(name_or_path)!r}: no such file and not a built-in recipe (built-ins: {known})")
    located = load_yaml_mapping(path, "recipe keys (model_name_or_path:, dataset_mixer:, output_dir:, ...)")
    data = plain(located)
    written: dict[str, str] = {}
    given: dict[str, str] = {}  # key -> the --set item that gave it
    for short, full in _ALIASES.items():  # the short LoRA names map onto the handbook's
        if short in data and full not in data:
            data[full] = data.pop(short)
            written[full] = short
    for item in overrides:
        key, value = parse_assignment(item)
        key = _ALIASES.get(key, key)
        data[key] = value
        written.pop(key, None)
        given[key] = item
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = [problem_line(f"--set {given[str(e['loc'][0])]!r}", e, model=Recipe)
                    if e["loc"] and str(e["loc"][0]) in given
                    else problem_line(path, e, located, aliases=written, model=Recipe) for e in exc.errors()]
        raise UserError(join_problems(problems)) from None
