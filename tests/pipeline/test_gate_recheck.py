"""The quality gate's thresholds are checks, not inputs of the data stage's key: a cached
data stage is re-gated under the thresholds of the command that reuses it (a stricter
one stops it without regenerating; an experiment records that variant as `gate`)."""

from __future__ import annotations

import pytest
from rich.console import Console

from cai_bench.errors import UserError
from cai_bench.pipeline.config import build_config
from cai_bench.pipeline.runner import STAGES, PipelineRun


def _two_stages(cfg) -> str:  # noqa: ANN001
    console = Console(record=True, width=200)
    run = PipelineRun(cfg, console)
    run.stage(0, STAGES[0])
    run.stage(1, STAGES[1])
    return console.export_text()


def test_a_stricter_gate_stops_a_cached_data_stage(tmp_path, home, monkeypatch) -> None:
    monkeypatch.delenv("CAI_BENCH_SHARED_DATA", raising=False)  # the packaged copy of the bundled data
    raw = {"task": "cai_south_africa", "out": str(tmp_path / "loop"), "split": {"max_train": 8, "max_eval": 4},
           "data": {"source": "bundled", "min_kept": 4}}
    first = _two_stages(build_config(raw))
    assert "data done" in first
    raw["data"]["min_kept"] = 1000
    with pytest.raises(UserError, match="quality gate failed: kept [0-9]+ < 1000 examples"):
        _two_stages(build_config(raw))
    raw["data"]["allow_low_quality"] = True
    again = _two_stages(build_config(raw))
    assert "data: cached" in again and "quality gate overridden" in again
