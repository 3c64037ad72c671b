"""Fixtures for training tests: a `generate`-format dataset dir built from real Blue Dot SA rows (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def build_cai_dataset(public_data: Path, dest: Path, n_train: int = 8, n_test: int = 4) -> Path:
    """Write sft/{train,test}.jsonl, prefs/{train,test}.jsonl and dataset_info.json (the generate format)."""
    sa = public_data / "bluedot_cai" / "sa"
    sft_raw = json.loads((sa / "sft_dataset.json").read_text(encoding="utf-8"))
    pref_raw = json.loads((sa / "pref_dataset.json").read_text(encoding="utf-8"))
    sft = [
        {"messages": [{"role": "user", "content": r["initial_prompt"]},
                      {"role": "assistant", "content": r["revision_response"]}],
         "principle_id": key}
        for key, rows in sft_raw.items() for r in rows
    ]
    prefs = [
        {"prompt": r["prompt"], "chosen": r["chosen_response"], "rejected": r["rejected_response"], "principle_id": key}
        for key, rows in pref_raw.items() for r in rows
    ]
    for sub, rows in (("sft", sft), ("prefs", prefs)):
        (dest / sub).mkdir(parents=True, exist_ok=True)
        for split, part in (("train", rows[:n_train]), ("test", rows[n_train:n_train + n_test])):
            with open(dest / sub / f"{split}.jsonl", "w", encoding="utf-8") as f:
                for row in part:
                    f.write(json.dumps(row) + "\n")
    (dest / "dataset_info.json").write_text(json.dumps(
        {"constitution": "south_africa", "source": "bluedot_cai/sa",
         "splits": {"sft": {"train": min(n_train, len(sft))}, "prefs": {"train": min(n_train, len(prefs))}}}))
    return dest


@pytest.fixture(scope="session")
def cai_dataset(public_data, tmp_path_factory) -> Path:
    return build_cai_dataset(public_data, tmp_path_factory.mktemp("cai_data") / "sa")


@pytest.fixture(scope="session")
def tiny_base(smollm2_dir, tmp_path_factory) -> Path:
    """A 2-layer, 64-wide Llama with SmolLM2's tokenizer (chat template): trains in seconds on a CPU.

    Weights are random, so its text is noise; it stands in for a base model wherever the
    test is about plumbing or the DPO reference, not about quality.
    """
    from tiny_models import build_tiny_llama

    return build_tiny_llama(smollm2_dir, tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture(scope="session")
def tiny_sft_adapter(tiny_base, tmp_path_factory) -> Path:
    """A LoRA adapter on `tiny_base` with random (non-zero) A and B, as an SFT output dir would hold.

    Non-zero B makes the adapter change the model, so a DPO reference that wrongly fell back to
    the bare base (adapter disabled) would show up as non-zero step-0 rewards.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_base),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False,
                                      task_type="CAUSAL_LM"))
    dest = tmp_path_factory.mktemp("tiny") / "sft"
    model.save_pretrained(dest)
    cfg_file = dest / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = str(tiny_base)  # as `cai-bench train sft` writes it
    cfg_file.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return dest
