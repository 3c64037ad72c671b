"""The DPO reference is the model DPO starts from (tiny 4-bit Llama, CPU, seconds).

At the first step the policy has not moved yet, so if the reference equals the starting
policy the implicit rewards beta * (log pi - log pi_ref) are 0 and the sigmoid loss is ln 2.
A reference that fell back to the bare base (adapter disabled) when DPO starts from an SFT
adapter would give rewards of order beta * (logp shift of the adapter), caught below.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cai_bench.training import load_recipe, train

BETA = 1.0  # large, so any reference/policy mismatch shows in the rewards


def _dpo_recipe(start: Path, data: Path, out: Path, *extra: str):
    return load_recipe("smollm2-135m-cpu-dpo", [
        f"model_name_or_path={start}", f"dataset_mixer={{{data}: 1.0}}", "dataset_splits=[train]",
        "max_train_samples=4", "per_device_train_batch_size=2", "max_steps=1", "save_steps=1", "max_length=64",
        "logging_steps=1", f"beta={BETA}", f"output_dir={out}", *extra])


def _chat_logp(model, tok, with_adapter: bool) -> float:
    """Summed log-prob of a short chat under the model, with or without its LoRA adapter."""
    import contextlib

    import torch

    ids = tok.apply_chat_template([{"role": "user", "content": "Is it fair to share food with a neighbour?"},
                                   {"role": "assistant", "content": "Yes: ubuntu means caring for others."}],
                                  return_tensors="pt", return_dict=True)["input_ids"]
    ctx = contextlib.nullcontext() if with_adapter else model.disable_adapter()
    with torch.no_grad(), ctx:
        logits = model(input_ids=ids).logits[:, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).sum().item()


def test_sft_adapter_moves_the_tiny_model(tiny_base, tiny_sft_adapter):
    """Control: the adapter shifts log-probs by far more than the tolerance used below."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), str(tiny_sft_adapter)).eval()
    tok = AutoTokenizer.from_pretrained(tiny_base)
    assert abs(_chat_logp(model, tok, True) - _chat_logp(model, tok, False)) * BETA > 0.05


@pytest.mark.parametrize("start", ["sft_adapter", "full_model"])
def test_first_dpo_step_has_zero_rewards_and_loss_ln2(start, tiny_base, tiny_sft_adapter, cai_dataset, tmp_path):
    """From an SFT adapter the reference is that adapter (TRL's frozen "ref" copy); from a full
    model it is the model with the fresh LoRA disabled. Either way it equals the start policy."""
    spec = tiny_sft_adapter if start == "sft_adapter" else tiny_base
    res = train("dpo", _dpo_recipe(spec, cai_dataset, tmp_path / "dpo"))
    first = next(e for e in res.metadata["log_history"] if "rewards/chosen" in e)
    assert first["step"] == 1
    for k in ("rewards/chosen", "rewards/rejected", "rewards/margins"):
        assert abs(first[k]) < 1e-4, (k, first)
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert res.metadata["start_adapter"] == (str(tiny_sft_adapter) if start == "sft_adapter" else None)


def test_dpo_from_adapter_without_a_ref_copy_is_refused(tiny_sft_adapter, cai_dataset, tmp_path, monkeypatch):
    """A TRL that keeps no frozen "ref" adapter (trl < 0.29) would silently use the bare base as
    the reference; the runner stops instead of training against the wrong model."""
    import trl

    from cai_bench.errors import UserError

    class NoRefCopy(trl.DPOTrainer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.model.delete_adapter("ref")

    monkeypatch.setattr(trl, "DPOTrainer", NoRefCopy)
    with pytest.raises(UserError, match=r"trl>=0\.29"):
        train("dpo", _dpo_recipe(tiny_sft_adapter, cai_dataset, tmp_path / "dpo"))
