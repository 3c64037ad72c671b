"""The pipeline's generation engine: `eval.engine` (hf | vllm | auto) picked once per
stage, and on vLLM one server for the student and its SFT/DPO adapters (LoRA
modules, not merged) that every run of the stage borrows.

The vLLM server computes in the checkpoint's own dtype (its config.json), as
transformers does, unless `eval.vllm.dtype` says otherwise: vLLM's `auto` would
run a float32 checkpoint (the bundled SmolLM2) in bf16, and greedy answers that
differ in the last bits of their logits are different answers.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from cai_bench.models.engine_choice import EngineChoice, choose_engine
from cai_bench.models.vllm_server import VllmServer, VllmSettings
from cai_bench.pipeline.config import PipelineConfig


def checkpoint_dtype(model_dir: str) -> str:
    """The dtype a checkpoint's config.json names (transformers' `auto`), else vLLM's `auto`."""
    try:
        conf = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "auto"
    dtype = conf.get("dtype") or conf.get("torch_dtype")
    return dtype if dtype in ("float32", "float16", "bfloat16") else "auto"


def eval_vllm_settings(cfg: PipelineConfig) -> VllmSettings:
    """eval.vllm, its `auto` dtype made the student's own (see the module's docstring)."""
    settings = cfg.eval.vllm
    if settings.dtype != "auto":
        return settings
    from cai_bench.models import resolve_checkpoint

    try:
        ckpt = resolve_checkpoint(cfg.student)
    except Exception:  # noqa: BLE001 - an unresolvable student fails later with its own error
        return settings
    return settings.model_copy(update={"dtype": checkpoint_dtype(ckpt.model)})


def planned_new_tokens(cfg: PipelineConfig, held_out: int) -> int | None:
    """At most how many tokens the eval generates (3 checkpoints x prompts x max_new_tokens);
    None when a regression task is evaluated whole (its size is not known here)."""
    others = cfg.regression_tasks()
    if others and cfg.eval.limit is None:
        return None
    return 3 * (held_out + len(others) * (cfg.eval.limit or 0)) * cfg.eval.max_new_tokens


def eval_engine(cfg: PipelineConfig, console=None, *, held_out: int | None = None) -> EngineChoice:
    """eval.engine resolved for this stage on this machine; the reason is printed."""
    tokens = planned_new_tokens(cfg, held_out) if held_out is not None else None
    choice = choose_engine(cfg.eval.engine, python=cfg.eval.vllm.python, new_tokens=tokens)
    if console is not None:
        console.print(f"  {choice.reason}", highlight=False, markup=False)
    return choice


def serving(cfg: PipelineConfig, engine: str, specs: list[str]) -> AbstractContextManager:
    """On vLLM: one server for the student and the adapters among `specs`, kept up for the
    block (the stage's runs and guard answers borrow it); on transformers: nothing."""
    if engine != "vllm":
        return nullcontext()
    from cai_bench.models import resolve_checkpoint
    from cai_bench.models.vllm_server import adapter_names, keep_serving

    resolved = [resolve_checkpoint(s) for s in specs]
    base = resolve_checkpoint(cfg.student)
    names = adapter_names(sorted({c.adapter for c in resolved if c.adapter}))
    return keep_serving(VllmServer(base.model, eval_vllm_settings(cfg), seed=cfg.seed,
                                   adapters={name: path for path, name in names.items()}))
