"""The cpu-small profile on the real SmolLM2 and the bundled GPT-4o data, with reduced sizes (slow)."""

from __future__ import annotations

import json

import pytest

from cai_bench.console import console
from cai_bench.pipeline import build_config
from cai_bench.pipeline.runner import run_pipeline


@pytest.mark.slow
@pytest.mark.shared_data
def test_cpu_small_profile_on_smollm2(shared_data, tmp_path, smollm2_dir):
    hhh = shared_data / "cai_paper_anthropic" / "evals" / "438HHHEvaluations.jsonl"
    cfg = build_config({
        "task": "cai_south_africa", "profile": "cpu-small", "out": str(tmp_path / "za"),
        "split": {"max_train": 16, "max_eval": 8},
        "data": {"bundled_dir": str(shared_data), "min_kept": 8},
        "sft": {"set": ["learning_rate=2e-4", "max_steps=6", "save_steps=3"]},
        "dpo": {"set": ["learning_rate=5e-5", "beta=0.1", "max_steps=6", "save_steps=3"]},
        "eval": {"tasks": ["xstest"], "limit": 4, "max_new_tokens": 32, "hhh_path": str(hhh), "hhh_limit": 10},
    })
    assert cfg.student == "bundled:smollm2-135m-instruct"
    data = run_pipeline(cfg, console)
    rows = {(r["task"], r["metric"]): r for r in data.rows}
    held = rows[("cai_south_africa_heldout", "similarity.similarity")]
    assert held["n"] == 8 and all(0 <= held[role]["mean"] <= 1 for role in ("base", "sft", "dpo"))
    assert rows[("hhh_alignment_response", "hhh_loglik.accuracy")]["n"] == 10
    dpo_log = json.loads((tmp_path / "za" / "dpo" / "cai_bench.json").read_text())["log_history"]
    assert any(abs(e.get("rewards/margins", 0)) > 1e-3 for e in dpo_log)  # the tuned DPO recipe moves the policy
    for no_op in (g for g in data.guards if g["name"].startswith("no-op DPO")):  # right after DPO, and in eval
        assert not no_op["fired"], no_op
