"""kill -9 after a checkpoint, then resume: a 4-bit QLoRA run ends bit-identical to an
uninterrupted one (TRL trains the adapter in bf16; PEFT used to reload it as fp32, and DPO's
frozen "ref" adapter with it, which moved the reference log-probs)."""

from __future__ import annotations

import shutil

from safetensors.torch import load_file

from cai_bench.training import load_recipe, train


def _recipe(base, data, out):
    return load_recipe("smollm2-135m-cpu-sft", [
        f"model_name_or_path={base}", f"output_dir={out}", f"dataset_mixer={{{data}: 1.0}}", "dataset_splits=[train]",
        "max_steps=6", "save_steps=3", "logging_steps=1", "max_length=96", "max_train_samples=12"])


def _keep_only(run_dir, checkpoint: str) -> None:
    for f in run_dir.iterdir():
        if f.name != checkpoint:
            shutil.rmtree(f) if f.is_dir() else f.unlink()


def test_resumed_qlora_run_is_bit_identical(tiny_base, cai_dataset, tmp_path):
    full = train("sft", _recipe(tiny_base, cai_dataset, tmp_path / "full"))
    part = tmp_path / "part"
    train("sft", _recipe(tiny_base, cai_dataset, part))
    _keep_only(part, "checkpoint-3")  # what a kill -9 right after checkpoint-3 leaves
    resumed = train("sft", _recipe(tiny_base, cai_dataset, part), resume=True)
    a = load_file(str(full.output_dir / "adapter_model.safetensors"))
    b = load_file(str(resumed.output_dir / "adapter_model.safetensors"))
    assert {str(v.dtype) for v in b.values()} == {"torch.bfloat16"}  # a 4-bit base: the adapter trains in bf16
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    losses = [[e["loss"] for e in r.metadata["log_history"] if "loss" in e] for r in (full, resumed)]
    assert losses[0] == losses[1]


def test_resumed_dpo_from_an_adapter_is_bit_identical(tiny_sft_adapter, cai_dataset, tmp_path):
    def recipe(out):
        return load_recipe("smollm2-135m-cpu-dpo", [
            f"model_name_or_path={tiny_sft_adapter}", f"output_dir={out}", f"dataset_mixer={{{cai_dataset}: 1.0}}",
            "dataset_splits=[train]", "max_steps=4", "save_steps=2", "logging_steps=1", "max_length=96",
            "max_train_samples=8"])

    full = train("dpo", recipe(tmp_path / "full"))
    part = tmp_path / "part"
    train("dpo", recipe(part))
    _keep_only(part, "checkpoint-2")
    resumed = train("dpo", recipe(part), resume=True)
    a = load_file(str(full.output_dir / "adapter_model.safetensors"))
    b = load_file(str(resumed.output_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_resume_warns_when_the_checkpoint_splits_a_logging_window(tiny_base, cai_dataset, tmp_path, caplog):
    recipe = load_recipe("smollm2-135m-cpu-sft", [
        f"model_name_or_path={tiny_base}", f"output_dir={tmp_path / 'run'}", f"dataset_mixer={{{cai_dataset}: 1.0}}",
        "dataset_splits=[train]", "max_steps=4", "save_steps=3", "logging_steps=2", "max_length=96",
        "max_train_samples=8"])
    train("sft", recipe)
    _keep_only(tmp_path / "run", "checkpoint-3")
    with caplog.at_level("WARNING"):
        train("sft", recipe, resume=True)
    assert "step 3 is not a multiple of logging_steps=2" in caplog.text


def test_a_resume_loads_the_trained_adapter_beside_the_frozen_reference(tiny_base, tmp_path):
    """transformers < 5.20 (vLLM's pin) skipped the top-level adapter of a checkpoint that also
    holds DPO's `ref/`: the resumed run went on from the starting weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file as load
    from transformers import AutoModelForCausalLM

    from cai_bench.training.runner import load_trained_adapter

    torch.manual_seed(0)
    cfg = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_base), cfg)
    model.add_adapter("ref", cfg)
    ck = tmp_path / "checkpoint-2"
    model.save_pretrained(ck)  # as the Trainer saves DPO: "default" at the top, the reference in ref/
    assert (ck / "ref" / "adapter_model.safetensors").is_file()
    saved = load(str(ck / "adapter_model.safetensors"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".default." in name:
                p.zero_()
    assert load_trained_adapter(model, ck)
    now = {n: p for n, p in model.named_parameters() if ".default." in n}
    for key, value in saved.items():
        match = [p for n, p in now.items() if n.replace(".default", "") == key]
        assert len(match) == 1 and torch.equal(match[0].detach().to(value.dtype), value), key
    assert all(p.requires_grad for p in now.values())
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".ref." in n)
    single = tmp_path / "one"
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_base), cfg).save_pretrained(single)
    assert not load_trained_adapter(model, single)  # one adapter: every transformers version loads it
