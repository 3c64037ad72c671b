"""Seeded train/test splits in the layout TRL reads, plus `dataset_info.json`.

    <out>/records.jsonl            every record, all columns (kept and dropped)
    <out>/sft/{train,test}.jsonl   {"messages": [user, assistant(revision)]}
    <out>/prefs/{train,test}.jsonl {"prompt": [user], "chosen": [assistant(revision)],
                                    "rejected": [assistant(initial)]}
    <out>/dataset_info.json        constitution, model, selection, counts, cleaning stats
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from cai_bench.errors import UserError
from cai_bench.generation.records import CAIRecord
from cai_bench.io import hub_offline
from cai_bench.paths import atomic_write_text


def split_records(records: Sequence[CAIRecord], *, seed: int, test_size: float) -> tuple[list, list]:
    """Shuffle by seed (ids sorted first, so input order does not matter) and cut off a test part."""
    rows = sorted(records, key=lambda r: r.id)
    random.Random(seed).shuffle(rows)
    n_test = int(round(len(rows) * test_size))
    if test_size > 0 and len(rows) >= 2:
        n_test = min(max(n_test, 1), len(rows) - 1)
    return rows[n_test:], rows[:n_test]


def _jsonl(rows: Sequence[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_dataset(records: Sequence[CAIRecord], out: Path, *, seed: int, test_size: float, info: dict) -> dict:
    """Write the SFT and preference splits and `dataset_info.json`; return the split counts."""
    kept = [r for r in records if r.drop_reason is None]
    train, test = split_records(kept, seed=seed, test_size=test_size)
    for name, part in (("train", train), ("test", test)):
        atomic_write_text(out / "sft" / f"{name}.jsonl", _jsonl([r.sft_row() for r in part]))
        atomic_write_text(out / "prefs" / f"{name}.jsonl", _jsonl([r.pref_row() for r in part]))
    counts = {"train": len(train), "test": len(test)}
    info = {**info, "splits": {"sft": counts, "prefs": counts},
            "files": {"records": "records.jsonl", "sft": {"train": "sft/train.jsonl", "test": "sft/test.jsonl"},
                      "prefs": {"train": "prefs/train.jsonl", "test": "prefs/test.jsonl"}}}
    atomic_write_text(out / "dataset_info.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return counts


def push_to_hub(out: Path, repo: str, *, private: bool = False) -> None:
    """Upload the SFT and preference splits as two configs of one hub dataset repo."""
    if hub_offline():
        raise UserError(f"--push-to-hub {repo}: HF_HUB_OFFLINE=1 is set; the hub cannot be reached. "
                        f"The data sets are in {out}; push them later from a machine with hub access")
    from datasets import load_dataset

    try:
        for config in ("sft", "prefs"):
            files = {s: str(out / config / f"{s}.jsonl") for s in ("train", "test")
                     if (out / config / f"{s}.jsonl").stat().st_size > 0}
            load_dataset("json", data_files=files).push_to_hub(repo, config_name=config, private=private)
    except Exception as exc:  # network, auth, missing token: all user-fixable
        raise UserError(f"--push-to-hub {repo}: upload failed ({type(exc).__name__}: {exc}). "
                        "Check network access and `huggingface-cli login`") from None
