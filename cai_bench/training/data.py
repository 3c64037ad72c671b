"""Dataset mixing: local `generate` output dirs and hub data sets -> one train/eval split.

A local dir holds `sft/{train,test}.jsonl` (column `messages`) and
`prefs/{train,test}.jsonl` (`prompt`, `chosen`, `rejected`); the trainer stage
picks the subfolder. Fractions subsample each source's train split (after a
seeded shuffle), as the alignment-handbook's `dataset_mixer` does; eval splits
are used whole. Every source is recorded with a content hash for provenance.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cai_bench.errors import UserError
from cai_bench.hashing import sha256_file
from cai_bench.io import hub_offline

SUBDIR = {"sft": "sft", "dpo": "prefs"}
COLUMNS = {"sft": ["messages"], "dpo": ["prompt", "chosen", "rejected"]}


@dataclass
class Mixture:
    train: Any  # datasets.Dataset
    eval: Any | None
    sources: list[dict] = field(default_factory=list)
    constitutions: list[str] = field(default_factory=list)


def _empty(path: Path) -> bool:
    return path.is_file() and not path.read_text(encoding="utf-8").strip()


def _constitutions(info: dict) -> list[str]:
    found: list[str] = []
    for key in ("constitutions", "constitution", "constitution_ids", "constitution_id"):
        v = info.get(key)
        if isinstance(v, str):
            found.append(v)
        elif isinstance(v, list):
            found += [x if isinstance(x, str) else str(x.get("id", x)) for x in v]
        elif isinstance(v, dict) and "id" in v:
            found.append(str(v["id"]))
    return found


def _load_local(root: Path, stage: str, split: str) -> tuple[Any, dict]:
    import datasets

    f = root / SUBDIR[stage] / f"{split}.jsonl"
    if not f.is_file():
        raise UserError(f"dataset_mixer: {root}: missing {f.relative_to(root)} (a `cai-bench generate` output dir has "
                        f"{SUBDIR[stage]}/train.jsonl and {SUBDIR[stage]}/test.jsonl)")
    try:
        ds = datasets.load_dataset("json", data_files=str(f), split="train")
    except Exception as exc:
        raise UserError(f"{f}: could not be read as JSON lines ({type(exc).__name__}: {exc})") from None
    return ds, {"source": str(root), "split": split, "file": str(f), "sha256": sha256_file(f)}


def _load_hub(repo: str, split: str) -> tuple[Any, dict]:
    import datasets

    offline = hub_offline(datasets=True)
    try:
        ds = datasets.load_dataset(repo, split=split)
    except Exception as exc:
        hint = " (offline: HF_DATASETS_OFFLINE/HF_HUB_OFFLINE is set)" if offline else ""
        raise UserError(
            f"dataset_mixer: {repo!r} is not a local directory and could not be loaded from the hub{hint}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Fix: pass a local `cai-bench "
            "generate` output dir, or run where the hub is reachable"
        ) from None
    fp = getattr(ds, "_fingerprint", None)
    return ds, {"source": f"hf:{repo}", "split": split, "fingerprint": fp}


def _to_conversational(ds: Any, stage: str, where: str) -> Any:
    """Keep the stage's columns; DPO string pairs become chat turns so the chat template applies."""
    missing = [c for c in COLUMNS[stage] if c not in ds.column_names]
    if missing:
        raise UserError(f"{where}: missing column(s) {missing} for {stage} (has {ds.column_names})")
    ds = ds.select_columns(COLUMNS[stage])
    if stage == "dpo" and len(ds) and isinstance(ds[0]["prompt"], str):
        def conv(row: dict) -> dict:
            return {
                "prompt": [{"role": "user", "content": row["prompt"]}],
                "chosen": [{"role": "assistant", "content": row["chosen"]}],
                "rejected": [{"role": "assistant", "content": row["rejected"]}],
            }
        ds = ds.map(conv, desc=None)
    return ds


def _subsample(ds: Any, fraction: float, seed: int) -> Any:
    if fraction >= 1.0:
        return ds
    n = max(1, math.ceil(len(ds) * fraction))
    return ds.shuffle(seed=seed).select(range(n))


def check_sources(mixer: dict[str, float]) -> None:
    """A source that is written as a path must be an existing folder (checked
    before any model is loaded; anything else is taken as a hub id)."""
    for name in mixer:
        if not Path(name).expanduser().is_dir() and (
                name.startswith((".", "/", "~")) or os.sep in name and name.count("/") != 1):
            raise UserError(f"dataset_mixer: {name!r}: no such directory")


def load_mixture(
    mixer: dict[str, float], stage: str, splits: list[str], seed: int,
    max_train_samples: int | None = None, max_eval_samples: int | None = None,
) -> Mixture:
    """Load, check, subsample and concatenate every source in `mixer` for `stage` (sft|dpo)."""
    import datasets

    check_sources(mixer)
    trains, evals, sources, constitutions = [], [], [], []
    for name, fraction in mixer.items():
        root = Path(name).expanduser()
        local = root.is_dir()
        for i, split in enumerate(splits):
            if local and i > 0 and _empty(root / SUBDIR[stage] / f"{split}.jsonl"):
                continue  # `generate --test-size 0` writes an empty test split
            if local:
                ds, meta = _load_local(root.resolve(), stage, split)
            else:
                ds, meta = _load_hub(name.removeprefix("hf:"), split)
            ds = _to_conversational(ds, stage, meta.get("file", meta["source"]))
            if i == 0:
                ds = _subsample(ds, fraction, seed)
                trains.append(ds)
            else:
                evals.append(ds)
            meta.update(rows_used=len(ds), fraction=fraction if i == 0 else 1.0, role="train" if i == 0 else "eval")
            sources.append(meta)
        info = root / "dataset_info.json"
        if local and info.is_file():
            try:
                constitutions += _constitutions(json.loads(info.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                raise UserError(f"{info}: unreadable ({exc})") from None
    train = datasets.concatenate_datasets(trains).shuffle(seed=seed) if len(trains) > 1 else trains[0]
    if max_train_samples:
        train = train.select(range(min(max_train_samples, len(train))))
    ev = None
    if evals:
        ev = datasets.concatenate_datasets(evals) if len(evals) > 1 else evals[0]
        if max_eval_samples:
            ev = ev.select(range(min(max_eval_samples, len(ev))))
    if len(train) == 0:
        raise UserError(f"dataset_mixer: no training rows for {stage} in {list(mixer)}")
    return Mixture(train, ev, sources, sorted(set(constitutions)))
