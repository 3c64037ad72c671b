"""`cai-bench train sft --num-processes 2`: two CPU processes with DDP (gloo)
through `accelerate launch` on a tiny Llama; both ranks train, rank 0 alone
saves one adapter, and it loads as a checkpoint in `cai-bench run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cai_bench.training.launch import builtin_configs, launch_command

_SCRIPT = Path(sys.executable).parent / "cai-bench"
CAI_BENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cai_bench"]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def test_builtin_configs_and_launch_command() -> None:
    assert {"multi_gpu", "deepspeed_zero3", "cpu_ddp"} <= set(builtin_configs())
    cmd = launch_command(["train", "sft", "r"], config="cpu_ddp", num_processes=2)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"] and cmd[-5:] == ["-m", "cai_bench", "train", "sft", "r"]
    assert cmd[cmd.index("--config_file") + 1].endswith("cpu_ddp.yaml") and "2" in cmd
    plain = launch_command(["train"], config=None, num_processes=2)
    assert "--multi_gpu" in plain  # torchrun underneath; each CPU rank picks gloo


def test_bad_accelerate_config_is_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cai_bench.cli import app

    res = CliRunner().invoke(app, ["train", "sft", "smollm2-135m-cpu-sft", "--accelerate-config", "nope"])
    assert res.exit_code == 2 and "--accelerate-config 'nope'" in res.output


def _train(tmp_path: Path, base: Path, data: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "sft"
    cmd = [*CAI_BENCH, "train", "sft", "smollm2-135m-cpu-sft", "-o", str(out),
           "--set", f"model_name_or_path={base}", "--set", "load_in_4bit=false",
           "--set", f"dataset_mixer={{{data}: 1.0}}", "--set", "max_steps=2", "--set", "max_length=64",
           "--set", "logging_steps=1", "--set", "save_steps=2", "--set", "per_device_train_batch_size=2", *extra]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    return res, out


@pytest.mark.slow  # about a minute alone, several on a loaded machine
def test_two_cpu_processes_ddp_gloo_save_one_adapter_that_runs(tmp_path: Path, tiny_base: Path,
                                                              cai_dataset: Path) -> None:
    res, out = _train(tmp_path, tiny_base, cai_dataset, "--accelerate-config", "cpu_ddp", "--num-processes", "2")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    text = res.stdout + res.stderr
    assert "rank 0/2: 2 steps on cpu" in text and "rank 1/2: 2 steps on cpu" in text
    assert text.count("sft done") == 1  # rank 0 reports
    meta = json.loads((out / "cai_bench.json").read_text())
    assert meta["world_size"] == 2 and meta["metrics"]["global_step"] == 2
    assert sorted(p.name for p in out.glob("adapter_*")) == ["adapter_config.json", "adapter_model.safetensors"]

    run = subprocess.run([*CAI_BENCH, "run", "--checkpoint", str(out), "--task", "cai_south_africa", "--limit", "1",
                          "--max-new-tokens", "4", "--scorer", "similarity", "--out", str(tmp_path / "eval"),
                          "--no-report"], env=_env(), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "new: 1 responses, 1 scored" in run.stderr


@pytest.mark.slow
def test_smollm2_two_cpu_processes(tmp_path: Path, smollm2_dir: Path, cai_dataset: Path) -> None:
    res, out = _train(tmp_path, smollm2_dir, cai_dataset, "--num-processes", "2")
    assert res.returncode == 0, res.stderr[-4000:]
    assert "rank 1/2: 2 steps on cpu" in res.stdout + res.stderr
    assert json.loads((out / "cai_bench.json").read_text())["world_size"] == 2
