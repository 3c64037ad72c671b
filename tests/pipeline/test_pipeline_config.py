"""Where the pipeline finds the CAI paper's HHH file when none is named."""

from __future__ import annotations

import shutil
from pathlib import Path

from cai_bench.pipeline.config import build_config
from cai_bench.pipeline.stages import hhh_source

SAMPLE = Path(__file__).parent / "data" / "hhh_sample.jsonl"


def test_hhh_found_beside_the_bundled_cai_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CAI_BENCH_HHH_PATH", raising=False)
    evals = tmp_path / "cai_paper_anthropic" / "evals"
    evals.mkdir(parents=True)
    shutil.copy(SAMPLE, evals / "438HHHEvaluations.jsonl")
    cfg = build_config({"task": "cai_south_africa", "data": {"bundled_dir": str(tmp_path)}})
    assert hhh_source(cfg) == str(evals / "438HHHEvaluations.jsonl")


def test_named_hhh_path_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CAI_BENCH_HHH_PATH", raising=False)
    cfg = build_config({"task": "cai_south_africa", "eval": {"hhh_path": str(SAMPLE)}})
    assert hhh_source(cfg) == str(SAMPLE)
