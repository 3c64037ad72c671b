"""DPO reference log-probabilities computed once per data set and cached on disk.

Without this, every DPO step runs the frozen reference (the SFT adapter, or the base
with the fresh LoRA disabled) over the chosen and rejected answers. The reference never
changes, so its summed log-probs are a function of (tokenized data, reference weights,
truncation) only: we compute them once, on the batches of the trainer's first epoch (so
each pair is padded as in its training step and the values are bit-identical), store them in a safetensors file named by that key,
and hand them to TRL's DPOTrainer as the `ref_chosen_logps` / `ref_rejected_logps`
columns its precompute path reads. A resumed run (same output dir) and a re-run (same
key) load the file instead of recomputing.

We do not let TRL precompute in its constructor: it would run before the runner casts
the frozen "ref" adapter to the policy's dtype (runner._match_ref_adapter_dtype), and it
keys its cache on the `datasets` cache folder, which an in-memory data set lacks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cai_bench.hashing import digest
from cai_bench.paths import atomic_write_bytes

log = logging.getLogger("cai_bench.training")
FORMAT = "cai-bench-ref-logps/2"  # 2: computed on the trainer's epoch-0 batches
CACHE_SUBDIR = "ref_logps"  # beside the DPO stage's checkpoints: its lifetime is the stage's


@dataclass
class RefLogps:
    """What the runner records in cai_bench.json about the reference log-probs of one split."""

    split: str
    key: str
    file: str
    rows: int
    reused: bool
    seconds: float
    batches: str = ""  # "trainer epoch 0" (bit-identical to the per-step reference) or "length-sorted, N per batch"

    def as_dict(self) -> dict[str, Any]:
        return {"split": self.split, "key": self.key, "file": self.file, "rows": self.rows,
                "reused": self.reused, "seconds": round(self.seconds, 3), "batches": self.batches}


def data_hash(dataset: Any) -> str:
    """sha256 of the tokenized pairs in row order: covers the data, the tokenizer and its chat template."""
    import array

    h = hashlib.sha256()
    for row in dataset.select_columns(["prompt_ids", "chosen_ids", "rejected_ids"]):
        for col in ("prompt_ids", "chosen_ids", "rejected_ids"):
            ids = row[col]
            h.update(len(ids).to_bytes(4, "little"))
            h.update(array.array("q", ids).tobytes())
    return h.hexdigest()


def reference_fingerprint(model: Any, base_fingerprint: str) -> str:
    """The reference's identity: the base weights' fingerprint plus, when TRL keeps a frozen
    "ref" adapter, a hash of its tensors as they sit in memory (after the dtype cast). Without
    a "ref" adapter the reference is the base with the LoRA disabled: the base fingerprint alone."""
    import torch

    h = hashlib.sha256(base_fingerprint.encode())
    if "ref" in getattr(model, "peft_config", {}):
        for name, param in sorted((n, p) for n, p in model.named_parameters() if ".ref." in n):
            t = param.detach().to("cpu").contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    else:
        h.update(b"adapter disabled")
    return h.hexdigest()


def cache_key(*, data: str, reference: str, max_length: int | None, truncation_mode: str, ld_alpha: float | None,
              precision: dict[str, Any], libraries: dict[str, str], batches: str | None = None) -> str:
    """Everything that changes the reference log-probs, and nothing else (learning rate, beta,
    steps and seed do not). `batches`: a digest of the batches they were computed on; which pairs
    share a batch (the seed, the batch size) changes them by float rounding, and the values
    must be the ones the training steps would compute."""
    return digest({"format": FORMAT, "data": data, "reference": reference, "max_length": max_length,
                   "truncation_mode": truncation_mode, "ld_alpha": ld_alpha, "precision": precision,
                   "libraries": libraries, **({"batches": batches} if batches is not None else {})}, length=32)


def _lengths(dataset: Any) -> list[int]:
    p, c, r = (dataset[col] for col in ("prompt_ids", "chosen_ids", "rejected_ids"))
    return [len(a) + max(len(b), len(d)) for a, b, d in zip(p, c, r)]


def epoch0_batches(trainer: Any, rows: int) -> list[list[int]] | None:
    """The row indices of each batch the trainer's first epoch will see, or None where they
    cannot be known here (several processes, a sampler without a seeded epoch).

    The training loader's sampler (accelerate's SeedableRandomSampler) draws epoch e's order
    from seed + e, so a loader built now yields the batches training will. Computing the
    reference on exactly those batches pads every pair as the training step does, so the
    log-probs, and the adapter, are bit-identical to a run without the precompute."""
    if trainer.args.world_size > 1:
        return None
    loader = trainer.get_train_dataloader()
    try:
        batches = getattr(loader, "batch_sampler", None)
        sampler = getattr(batches, "sampler", None)
        if batches is None or not hasattr(sampler, "set_epoch"):
            return None
        sampler.set_epoch(0)
        order = [list(b) for b in batches]
    finally:
        if loader in getattr(trainer.accelerator, "_dataloaders", []):
            trainer.accelerator._dataloaders.remove(loader)  # not a loader the run trains or saves with
    if sorted(i for b in order for i in b) != list(range(rows)):
        return None  # a sampler that drops or repeats rows: the length-sorted batches cover each once
    return order


def compute(trainer: Any, dataset: Any, batch_size: int, description: str,
            batches: list[list[int]] | None = None) -> tuple[list[float], list[float]]:
    """Summed reference log-probs of every pair, in the data set's row order.

    `batches`: the trainer's epoch-0 batches (`epoch0_batches`), so that each pair is padded
    as in its training step. Without them pairs are batched by length (longest first, so a
    memory problem shows at once), which pads less but rounds differently. TRL's own
    `compute_ref_log_probs` runs each batch (the "ref" adapter or the disabled LoRA, no
    grad, the trainer's autocast), so the values are the ones a training step computes."""
    from cai_bench.console import make_progress

    if batches is None:
        order = sorted(range(len(dataset)), key=_lengths(dataset).__getitem__, reverse=True)
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    order = [i for b in batches for i in b]
    cols = ["prompt_ids", "chosen_ids", "rejected_ids"]
    device = trainer.accelerator.device
    chosen: list[float] = [0.0] * len(order)
    rejected: list[float] = [0.0] * len(order)
    # train mode, as in a training step (TRL disabled dropout, so the values are the same): bitsandbytes
    # (0.50, AVX512-BF16 CPUs) repacks a 4-bit layer's weight on its first no-grad forward in eval mode,
    # and from then on runs it through an inference kernel with no autograd, so the training backward
    # afterwards lost the gradient through the base layers (grad norm 37 instead of 43 on the tiny model)
    modes = {m: m.training for m in trainer.model.modules()}
    trainer.model.train()
    try:
        with make_progress(transient=True) as progress:
            task = progress.add_task(description, total=len(order))
            for idx in batches:
                rows = dataset.select(idx).select_columns(cols)
                batch = trainer.data_collator([dict(r) for r in rows])
                batch = {k: v.to(device) for k, v in batch.items()}
                c, r = trainer.compute_ref_log_probs(trainer.model, batch)
                for i, cv, rv in zip(idx, c.float().cpu().tolist(), r.float().cpu().tolist()):
                    chosen[i], rejected[i] = cv, rv
                progress.advance(task, len(idx))
    finally:
        for m, mode in modes.items():
            m.training = mode
    return chosen, rejected


def _load(path: Path, rows: int) -> tuple[list[float], list[float]] | None:
    """The cached columns, or None when the file is missing, unreadable or for another row count."""
    from safetensors.torch import load_file

    try:
        t = load_file(str(path))
        chosen, rejected = t["chosen"], t["rejected"]
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file is recomputed, never trusted
        if path.exists():
            log.warning("%s: unreadable reference log-probs (%s); recomputing", path, type(exc).__name__)
        return None
    if chosen.numel() != rows or rejected.numel() != rows:
        log.warning("%s: %d rows cached, the data has %d; recomputing", path, chosen.numel(), rows)
        return None
    return chosen.tolist(), rejected.tolist()


def _save(path: Path, chosen: list[float], rejected: list[float], meta: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import save

    blob = save({"chosen": torch.tensor(chosen, dtype=torch.float64),
                 "rejected": torch.tensor(rejected, dtype=torch.float64)},
                metadata={"format": FORMAT, "meta": json.dumps(meta, sort_keys=True, default=str)})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, blob)


def attach(trainer: Any, dataset: Any, split: str, cache_dir: Path, key: str, batch_size: int,
           meta: dict[str, Any], batches: list[list[int]] | None = None) -> tuple[Any, RefLogps]:
    """`dataset` with the reference columns, from `cache_dir/<split>-<key>.safetensors` or computed
    (then saved, atomically, so a kill never leaves a half file that a later run would trust).
    Under several processes rank 0 computes and the others then read its file."""
    path = cache_dir / f"{split}-{key}.safetensors"
    t0 = time.perf_counter()
    with trainer.accelerator.main_process_first():
        cached = _load(path, len(dataset))
        if cached is None:
            cached = compute(trainer, dataset, batch_size, f"reference log-probs ({split})", batches)
            if trainer.accelerator.is_main_process:
                _save(path, *cached, meta={**meta, "split": split, "key": key, "rows": len(dataset)})
            reused = False
        else:
            reused = True
            log.info("reusing reference log-probs from %s", path)
    chosen, rejected = cached
    dataset = dataset.add_column("ref_chosen_logps", chosen).add_column("ref_rejected_logps", rejected)
    return dataset, RefLogps(split, key, str(path), len(chosen), reused, time.perf_counter() - t0,
                             meta.get("batches", ""))


def use_precomputed(trainer: Any, *, base_fingerprint: str, precision: dict[str, Any], libraries: dict[str, str],
                    cache_dir: Path, batch_size: int | None) -> list[RefLogps]:
    """Give a built DPOTrainer precomputed reference log-probs for its train split and switch its
    training loss to read them instead of running the reference at every step.

    Evaluation keeps the per-step reference: it runs in eval mode, where bitsandbytes' CPU
    inference kernel gives the policy slightly different log-probs than the train-mode ones
    precomputed here (eval loss 0.689 instead of ln 2 for an unchanged policy on the tiny model);
    run beside the policy, the reference goes through the same kernel, as before."""
    if not hasattr(trainer, "precompute_ref_logps") or not hasattr(trainer, "compute_ref_log_probs"):
        from cai_bench.errors import UserError

        raise UserError("precompute_ref_log_probs: this TRL's DPOTrainer has no precompute path "
                        "(precompute_ref_logps / compute_ref_log_probs). Fix: pip install 'trl>=1.0', "
                        "or set precompute_ref_log_probs: false")
    args = trainer.args
    reference = reference_fingerprint(trainer.model, base_fingerprint)
    batches = epoch0_batches(trainer, len(trainer.train_dataset))
    size = batch_size or args.per_device_train_batch_size
    key = cache_key(data=data_hash(trainer.train_dataset), reference=reference, max_length=args.max_length,
                    truncation_mode=args.truncation_mode, ld_alpha=getattr(args, "ld_alpha", None),
                    precision=precision, libraries=libraries,
                    batches=digest(batches if batches is not None else f"length-sorted/{size}", length=32))
    meta = {"reference": reference, "base_fingerprint": base_fingerprint, "max_length": args.max_length,
            "batches": "trainer epoch 0" if batches is not None else f"length-sorted, {size} per batch"}
    trainer.train_dataset, rec = attach(trainer, trainer.train_dataset, "train", cache_dir, key, size, meta, batches)
    trainer.precompute_ref_logps = True  # TRL's _compute_loss now reads the columns
    evaluate = trainer.evaluate

    def evaluate_with_the_reference(*a: Any, **k: Any) -> Any:
        trainer.precompute_ref_logps = False
        try:
            return evaluate(*a, **k)
        finally:
            trainer.precompute_ref_logps = True

    trainer.evaluate = evaluate_with_the_reference
    return [rec]
