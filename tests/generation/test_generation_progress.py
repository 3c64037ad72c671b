"""Long stages report progress per batched model call, on a real tiny in-process
model: `generate` (also the pipeline's data stage) once per step of each chunk
(response, critique, revision), and the in-process (hf) judge once per scored
batch, whatever the run is for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.progress import Progress, TaskID

from cai_bench.generation.pipeline import STEPS, GenerateConfig, generate
from cai_bench.harness.score_file import score_file


@pytest.fixture(scope="module")
def tiny_model(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-wide Llama with SmolLM2's tokenizer: random text in milliseconds."""
    from tiny_models import build_tiny_llama

    return build_tiny_llama(smollm2_dir, tmp_path_factory.mktemp("tiny") / "tiny-llama", 2048)


def test_generate_reports_after_every_batched_call(tmp_path: Path, tiny_model: Path) -> None:
    calls: list[tuple[int, int]] = []
    cfg = GenerateConfig(constitution="south_africa", prompts="cai_south_africa", model=str(tiny_model),
                         out=tmp_path / "gen", selection="random", n=5, batch_size=2, max_new_tokens=4,
                         few_shot=False, keep_truncated=True, test_size=0.0)
    result = generate(cfg, on_progress=lambda done, total: calls.append((done, total)))
    assert result.generated_now + result.failed == 5
    # chunks of 2, 2, 1 prompts, three batched calls each: 9 reports after the first (0, 15)
    assert calls == [(0, 15), (2, 15), (4, 15), (6, 15), (8, 15), (10, 15), (12, 15), (13, 15), (14, 15),
                     (15, 15)]
    assert STEPS == 3
    calls.clear()
    generate(cfg, on_progress=lambda done, total: calls.append((done, total)))
    assert calls == []  # all reused: nothing to report


class _Recording(Progress):
    """A real (silent) Rich progress that also keeps each advance: the bar the CLI shows."""

    def __init__(self) -> None:
        super().__init__(disable=True)
        self.advances: list[float] = []

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        self.advances.append(advance)
        super().advance(task_id, advance)


def test_in_process_judge_advances_per_batch(tmp_path: Path, tiny_model: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": str(i), "prompt": f"How do I greet an elder, case {i}?",
                                        "response": "Say hello.", "task": "cai_south_africa"}) + "\n"
                            for i in range(7)))
    settings: dict[str, dict[str, Any]] = {"judge": {"backend": "hf", "model": str(tiny_model), "max_tokens": 16,
                                                     "batch_size": 3}}
    with _Recording() as progress:
        result = score_file(rows, ["judge"], progress=progress, settings=settings)
        assert progress.advances == [3, 3, 1]  # one advance per batch of 3, not one at the end
        assert progress.tasks[0].completed == progress.tasks[0].total == 7
    assert [st.available for st in result.statuses] == [True]
    assert all("judge.helpfulness" in r for r in result.rows)
