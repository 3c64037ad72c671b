"""Real 4-bit QLoRA runs on the bundled SmolLM2 (minutes): SFT -> DPO, determinism, kill/resume, merge."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.models import resolve_checkpoint
from cai_bench.training import load_recipe, train

pytestmark = pytest.mark.slow
TINY = ["max_length=128", "per_device_train_batch_size=2", "logging_steps=1"]


def _sft(cai_dataset: Path, out: Path, steps: int = 10, extra: tuple[str, ...] = ()):
    r = load_recipe("smollm2-135m-cpu-sft", [f"dataset_mixer={{{cai_dataset}: 1.0}}", f"max_steps={steps}",
                                             f"save_steps={steps}", f"output_dir={out}", *TINY, *extra])
    return train("sft", r)


@pytest.fixture(scope="module")
def sft_run(cai_dataset, smollm2_dir, tmp_path_factory):
    return _sft(cai_dataset, tmp_path_factory.mktemp("sft") / "out")


def test_sft_then_dpo_from_its_adapter(sft_run, cai_dataset, smollm2_dir, tmp_path):
    assert sft_run.metrics["global_step"] == 10 and math.isfinite(sft_run.metrics["final_loss"])
    r = load_recipe("smollm2-135m-cpu-dpo", [f"dataset_mixer={{{cai_dataset}: 1.0}}", "max_steps=10", "save_steps=10",
                                             f"model_name_or_path={sft_run.output_dir}", f"output_dir={tmp_path / 'dpo'}",
                                             "learning_rate=5e-5", *TINY])
    dpo = train("dpo", r)
    assert dpo.metrics["global_step"] == 10 and math.isfinite(dpo.metrics["final_loss"])
    logged = [e for e in dpo.metadata["log_history"] if "rewards/chosen" in e]
    assert len(logged) == 10
    assert all(math.isfinite(e[k]) for e in logged for k in ("rewards/chosen", "rewards/rejected", "rewards/margins"))
    # step 1 is scored before any update: the reference (the SFT adapter) equals the policy
    assert all(abs(logged[0][k]) < 1e-5 for k in ("rewards/chosen", "rewards/rejected", "rewards/margins"))
    assert logged[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert dpo.metadata["start_adapter"] == str(sft_run.output_dir)
    # a standalone adapter on the original base (no reference adapter saved with it)
    ck = resolve_checkpoint(str(dpo.output_dir))
    assert ck.kind == "peft" and ck.model == str(smollm2_dir) and not (dpo.output_dir / "ref").exists()
    # the policy moved away from the SFT adapter
    from safetensors.torch import load_file

    a = load_file(str(sft_run.output_dir / "adapter_model.safetensors"))
    b = load_file(str(dpo.output_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and any(not (a[k].float() == b[k].float()).all() for k in a)


def test_same_seed_same_final_sft_loss(sft_run, cai_dataset, tmp_path):
    again = _sft(cai_dataset, tmp_path / "again")
    assert abs(again.metrics["final_loss"] - sft_run.metrics["final_loss"]) < 1e-4


def test_sigkill_during_sft_then_resume(cai_dataset, smollm2_dir, tmp_path):
    out = tmp_path / "killed"
    cmd = [str(Path(sys.executable).parent / "cai-bench"), "-q", "train", "sft", "smollm2-135m-cpu-sft", "-o", str(out),
           "--set", f"dataset_mixer={{{cai_dataset}: 1.0}}", "--set", "max_steps=4", "--set", "save_steps=2",
           "--set", "save_total_limit=null", *[x for t in TINY for x in ("--set", t)]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not (out / "checkpoint-2" / "trainer_state.json").is_file():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "cai_bench.json").exists()

    res = CliRunner().invoke(app, [*cmd[2:], "--resume"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "cai_bench.json").read_text())
    resumed = int(Path(meta["resumed_from"]).name.split("-")[1])
    assert 2 <= resumed < 4 and meta["metrics"]["global_step"] == 4
    steps = [e["step"] for e in meta["log_history"] if "loss" in e]
    assert steps[-1] == 4 and resumed + 1 in steps


def test_merge_writes_a_full_model(cai_dataset, smollm2_dir, tmp_path):
    r = load_recipe("smollm2-135m-cpu-sft", [f"dataset_mixer={{{cai_dataset}: 1.0}}", "max_steps=2", "save_steps=2",
                                             f"output_dir={tmp_path / 'm2'}", *TINY])
    m = train("sft", r, merge=True)
    assert (m.output_dir / "config.json").is_file() and not (m.output_dir / "adapter_config.json").exists()
    assert (m.output_dir / "adapter" / "adapter_config.json").is_file()
    ck = resolve_checkpoint(str(m.output_dir))
    assert ck.kind == "hf" and ck.model == str(m.output_dir)
