"""The pipeline's eval stage on vLLM, for real (vLLM beside cai-bench, or at
$CAI_BENCH_VLLM_PYTHON; the bundled SmolLM2 as student, two random LoRA adapters
as its SFT and DPO checkpoints): `eval.engine: vllm` answers base, SFT and DPO
from one server started once for both of the stage's runs (held-out part and a
regression task), every answer stored under engine vllm."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from rich.console import Console
from tiny_models import random_lora

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # a vLLM server start: 1.5-6 min on this CPU


def test_eval_stage_serves_base_sft_and_dpo_from_one_vllm_server(tmp_path: Path, smollm2_dir: Path,
                                                                vllm_python: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from cai_bench.pipeline.config import build_config
    from cai_bench.pipeline.stages import TrainResult, stage_data, stage_eval, stage_task

    logs = tmp_path / "tmp"
    logs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(logs))  # where each server start leaves its log
    out = tmp_path / "za"
    cfg = build_config({"task": "cai_south_africa", "student": str(smollm2_dir), "out": str(out),
                        "split": {"max_train": 8, "max_eval": 3}, "data": {"min_kept": 1},
                        "eval": {"engine": "vllm", "tasks": ["xstest"], "limit": 2, "hhh": False,
                                 "max_new_tokens": 8, "batch_size": 4, "vllm": {"python": vllm_python}}})
    task = stage_task(cfg, out / "task")
    data = stage_data(cfg, out / "data", task)
    roles = {}
    for seed, role in enumerate(("sft", "dpo"), start=1):
        path = random_lora(smollm2_dir, out / role, seed)
        roles[role] = TrainResult(output_dir=str(path), train_rows=None, final_loss=None, steps=None,
                                  meta_file="", provenance_file="")
    res = stage_eval(cfg, out / "eval", Console(stderr=True), task=task, data=data, **roles)
    assert res.engine == "vllm"
    assert len(list(logs.glob("cai-bench-vllm-*.log"))) == 1  # one server for both runs and all three
    con = sqlite3.connect(Path(res.store.split("///", 1)[-1]))
    try:
        rows = con.execute("select fingerprint, task_id, count(*) from generations group by 1, 2").fetchall()
        engines = {r[0] for r in con.execute("select json_extract(metadata_json, '$.engine') from checkpoints")}
    finally:
        con.close()
    assert engines == {"vllm"}
    assert sorted(n for _, t, n in rows if t == "xstest") == [2, 2, 2]
    assert len({fp for fp, _, _ in rows}) == 3
