"""The bundled Romanian data has rows for 33 of the task's 330 prompts (one per principle).
The split puts those in the train part first, so a cpu-small loop trains on all of them
(it kept 6 and stopped at the gate before); South Africa's data covers every prompt and
its split is unchanged (its stage keys are pinned in test_stage_keys_pinned)."""

from __future__ import annotations

import json

from rich.console import Console

from cai_bench.pipeline.config import build_config
from cai_bench.pipeline.runner import STAGES, PipelineRun, _summary
from cai_bench.pipeline.stages import bundled_coverage


def test_romania_trains_on_every_bundled_row(tmp_path, home, monkeypatch) -> None:
    monkeypatch.delenv("CAI_BENCH_SHARED_DATA", raising=False)  # the packaged copy
    cfg = build_config({"task": "cai_romania", "profile": "cpu-small", "out": str(tmp_path / "ro")})
    covered = bundled_coverage(cfg)
    assert len(covered) == 33
    console = Console(record=True, width=300)
    run = PipelineRun(cfg, console)
    task = run.stage(0, STAGES[0])
    data = run.stage(1, STAGES[1])
    split = json.loads((tmp_path / "ro" / "task" / "split.json").read_text())
    assert (task.train, task.eval, task.bundled_first, split["bundled_first"]) == (64, 32, 33, 33)
    assert covered <= set(split["train"]) and not covered & set(split["eval"])
    assert (data.kept, data.total) == ({"sft": 33, "prefs": 66}, {"sft": 33, "prefs": 66})
    line = _summary("task", task, cfg, tmp_path / "ro")  # what `pipeline` prints under the stage
    assert "the 33 train prompts that the bundled data has rows for were put in the train part first" in line


def test_full_coverage_leaves_the_split_alone(tmp_path) -> None:
    cfg = build_config({"task": "cai_south_africa", "profile": "cpu-small", "out": str(tmp_path / "za")})
    assert bundled_coverage(cfg) == frozenset()
