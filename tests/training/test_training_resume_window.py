"""A `train` killed after its last checkpoint was saved but before the final
output was written: `--resume` finishes from that checkpoint (no step past
max_steps, no checkpoint-N+1) and the output loads in `run`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.models import resolve_checkpoint


def test_resume_after_the_last_checkpoint_writes_the_output_without_another_step(tmp_path: Path, tiny_base,
                                                                                 cai_dataset) -> None:
    out = tmp_path / "sft"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"stage: sft\nmodel_name_or_path: {tiny_base}\ntorch_dtype: float32\nload_in_4bit: false\nuse_peft: true\n"
        f"lora_r: 4\nlora_alpha: 8\nlora_target_modules: all-linear\ndataset_mixer:\n  {cai_dataset}: 1.0\n"
        "max_steps: 3\nsave_steps: 1\nsave_total_limit: null\nper_device_train_batch_size: 2\n"
        "gradient_checkpointing: false\nmax_length: 128\nlogging_steps: 1\nlearning_rate: 1.0e-3\n"
        f"output_dir: {out}\nreport_to: none\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["train", "sft", str(recipe)])
    assert res.exit_code == 0, res.output
    adapter = (out / "adapter_model.safetensors").read_bytes()
    final = (out / "checkpoint-3" / "adapter_model.safetensors").read_bytes()
    # (3 steps of a 4-step epoch: resuming mid-epoch at max_steps is where the Trainer took a 4th step)
    # what a kill -9 in the window leaves: checkpoint-3 complete, no final output yet
    for name in ("cai_bench.json", "adapter_model.safetensors", "adapter_config.json"):
        (out / name).unlink()
    res = CliRunner().invoke(app, ["train", "sft", str(recipe), "--resume"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "cai_bench.json").read_text())
    assert meta["metrics"]["global_step"] == 3 and meta["resumed_from"].endswith("checkpoint-3")
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    assert (out / "adapter_model.safetensors").read_bytes() in (adapter, final)
    assert resolve_checkpoint(str(out)).kind == "peft"
