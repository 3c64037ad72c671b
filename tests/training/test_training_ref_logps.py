"""Precomputed DPO reference log-probs: keyed by content, reused on re-run and resume, optional
(tiny 4-bit Llama from an SFT adapter, CPU, seconds)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from cai_bench.training import load_recipe, train
from cai_bench.training.ref_logps import cache_key


def _recipe(start: Path, data: Path, out: Path, *extra: str):
    return load_recipe("smollm2-135m-cpu-dpo", [
        f"model_name_or_path={start}", f"output_dir={out}", f"dataset_mixer={{{data}: 1.0}}", "dataset_splits=[train]",
        "max_steps=4", "save_steps=2", "logging_steps=1", "max_length=96", "max_train_samples=8", "beta=1.0",
        "precompute_ref_log_probs=true", *extra])


def _splits(res) -> list[dict]:
    return res.metadata["ref_log_probs"]["splits"]


def _adapter(res) -> dict:
    return load_file(str(Path(res.output_dir) / "adapter_model.safetensors"))


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


KEY = dict(data="d", reference="r", max_length=256, truncation_mode="keep_start", ld_alpha=None,
           precision={"device": "cpu", "torch_dtype": "float32"}, libraries={"torch": "2"})


@pytest.mark.parametrize("field,value", [("data", "d2"), ("reference", "r2"), ("max_length", 128),
                                         ("truncation_mode", "keep_end"), ("ld_alpha", 0.5),
                                         ("precision", {"device": "cpu", "torch_dtype": "bfloat16"}),
                                         ("libraries", {"torch": "3"}), ("batches", "b2")])
def test_cache_key_changes_with_what_changes_the_reference_log_probs(field, value):
    assert cache_key(**{**KEY, field: value}) != cache_key(**KEY)
    assert cache_key(**KEY) == cache_key(**dict(KEY))


def test_precompute_is_opt_in_and_set_turns_it_on_and_off():
    """Off in every built-in recipe (one epoch: the precompute costs what it saves, docs/training.md)."""
    from cai_bench.training import list_recipes

    assert not any(load_recipe(name).precompute_ref_log_probs for name in list_recipes())
    assert load_recipe("smollm2-135m-cpu-dpo", ["precompute_ref_log_probs=true"]).precompute_ref_log_probs is True
    assert load_recipe("smollm2-135m-cpu-dpo", ["precompute_ref_log_probs=true",
                                                "precompute_ref_log_probs=false"]).precompute_ref_log_probs is False


def test_precompute_gives_today_s_first_step_and_adapter(tiny_sft_adapter, cai_dataset, tmp_path):
    """Step 1: rewards 0 and loss ln 2 (the reference is the start adapter, in the policy's dtype);
    computed on the trainer's own epoch-0 batches, the reference log-probs, the rewards and the
    adapter after 4 steps are exactly those of the per-step reference."""
    on = train("dpo", _recipe(tiny_sft_adapter, cai_dataset, tmp_path / "on"))
    off = train("dpo", _recipe(tiny_sft_adapter, cai_dataset, tmp_path / "off", "precompute_ref_log_probs=false"))
    first = next(e for e in on.metadata["log_history"] if "rewards/chosen" in e)
    assert abs(first["rewards/margins"]) < 1e-4 and first["loss"] == pytest.approx(math.log(2), abs=1e-4)
    [split] = _splits(on)
    assert split["split"] == "train" and split["rows"] == 8 and not split["reused"]
    assert split["batches"] == "trainer epoch 0"
    assert Path(split["file"]).parent == tmp_path / "on" / "ref_logps" and Path(split["file"]).is_file()
    assert off.metadata["ref_log_probs"] == {"precomputed": False, "splits": []}
    assert not (tmp_path / "off" / "ref_logps").exists()
    # the gradients match exactly: a no-grad forward in eval mode before training made bitsandbytes
    # repack its CPU weights and the backward lose the base layers' path (grad norm 37 instead of 43)
    norms = [[e["grad_norm"] for e in r.metadata["log_history"] if "grad_norm" in e] for r in (on, off)]
    assert norms[0] == norms[1]
    print("max |adapter difference| precompute vs per-step reference:", _max_diff(_adapter(on), _adapter(off)))
    assert _max_diff(_adapter(on), _adapter(off)) == 0
    for k in ("rewards/chosen", "rewards/rejected", "loss"):
        a = [e[k] for e in on.metadata["log_history"] if k in e and "train_runtime" not in e]
        b = [e[k] for e in off.metadata["log_history"] if k in e and "train_runtime" not in e]
        assert a == b, k


def test_a_resumed_run_reuses_the_cache_and_matches_the_straight_run(tiny_sft_adapter, cai_dataset, tmp_path):
    full = train("dpo", _recipe(tiny_sft_adapter, cai_dataset, tmp_path / "full"))
    part = tmp_path / "part"
    train("dpo", _recipe(tiny_sft_adapter, cai_dataset, part))
    for f in part.iterdir():  # what a kill -9 right after checkpoint-2 leaves (the cache was written first)
        if f.name not in ("checkpoint-2", "ref_logps"):
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    resumed = train("dpo", _recipe(tiny_sft_adapter, cai_dataset, part), resume=True)
    assert [s["reused"] for s in _splits(resumed)] == [True]
    assert _splits(resumed)[0]["key"] == _splits(full)[0]["key"]
    a, b = _adapter(full), _adapter(resumed)
    assert all((a[k] == b[k]).all() for k in a)


def test_a_rerun_reuses_the_cache_unless_data_reference_or_lengths_change(tiny_base, tiny_sft_adapter, cai_dataset,
                                                                         tmp_path):
    shared = [f"ref_log_probs_cache_dir={tmp_path / 'cache'}", "max_steps=1", "save_steps=1"]
    first = _splits(train("dpo", _recipe(tiny_sft_adapter, cai_dataset, tmp_path / "a", *shared)))[0]
    # settings that touch neither the reference nor which pairs share a batch: same key, file reused
    again = _splits(train("dpo", _recipe(tiny_sft_adapter, cai_dataset, tmp_path / "b", *shared, "learning_rate=1e-3",
                                         "beta=0.5")))[0]
    assert again["reused"] and again["key"] == first["key"] and again["file"] == first["file"]
    # the seed and the batch size change the epoch-0 batches, whose padding the values follow
    for i, setting in enumerate(("seed=7", "per_device_train_batch_size=4")):
        moved = _splits(train("dpo", _recipe(tiny_sft_adapter, cai_dataset, tmp_path / f"s{i}", *shared, setting)))[0]
        assert not moved["reused"] and moved["key"] != first["key"], setting
    # the data, the reference and the max length do
    fewer = _splits(train("dpo", _recipe(tiny_sft_adapter, cai_dataset, tmp_path / "c", *shared,
                                         "max_train_samples=6")))[0]
    base = _splits(train("dpo", _recipe(tiny_base, cai_dataset, tmp_path / "d", *shared)))[0]
    shorter = _splits(train("dpo", _recipe(tiny_sft_adapter, cai_dataset, tmp_path / "e", *shared,
                                           "max_length=48")))[0]
    keys = {first["key"], fewer["key"], base["key"], shorter["key"]}
    assert len(keys) == 4 and not any(s["reused"] for s in (fewer, base, shorter))


def test_a_torn_cache_file_is_recomputed(tiny_sft_adapter, cai_dataset, tmp_path):
    out = tmp_path / "run"
    first = _splits(train("dpo", _recipe(tiny_sft_adapter, cai_dataset, out, "max_steps=1", "save_steps=1")))[0]
    Path(first["file"]).write_bytes(b"\0" * 10)
    shutil.rmtree(out / "checkpoint-1")
    (out / "cai_bench.json").unlink()
    again = _splits(train("dpo", _recipe(tiny_sft_adapter, cai_dataset, out, "max_steps=1", "save_steps=1")))[0]
    assert not again["reused"] and again["key"] == first["key"]
    assert load_file(first["file"])["chosen"].numel() == 8


def test_evaluation_keeps_the_per_step_reference(tiny_sft_adapter, cai_dataset, tmp_path):
    """Eval runs in eval mode, where bitsandbytes' CPU kernel gives other log-probs than the train-mode
    precompute: a precomputed eval reference read 0.689 instead of ln 2 for the unchanged policy."""
    def run(name: str, *extra: str):
        return train("dpo", _recipe(tiny_sft_adapter, cai_dataset, tmp_path / name, "dataset_splits=[train, test]",
                                    "eval_strategy=steps", "eval_steps=1", "max_steps=1", "save_steps=1", *extra))

    on, off = run("on"), run("off", "precompute_ref_log_probs=false")
    assert [(s["split"], s["rows"]) for s in _splits(on)] == [("train", 8)]
    evals = [[e["eval_loss"] for e in r.metadata["log_history"] if "eval_loss" in e] for r in (on, off)]
    assert evals[0] == evals[1] == [pytest.approx(math.log(2), abs=1e-4)]
