"""Issue 17.4: `tasks new` on prompts without references says which scorers will have
nothing to compare with (similarity, the only one that runs offline)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.harness.scorers import scorer_class, scorer_ids
from cai_bench.tasks import load_task


def _new(tmp_path: Path, name: str, rows: list[dict]) -> str:
    src = tmp_path / f"{name}.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["tasks", "new", name, "--constitution", "south_africa", "--prompts", str(src)],
                             env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def test_no_reference_column_warns_and_names_the_scorers(home, tmp_path):
    needing = [s for s in scorer_ids() if scorer_class(s).needs_reference]
    assert needing == ["similarity"]
    out = _new(tmp_path, "cai_bo", [{"prompt": "Is the Pachamama festival important?"},
                                    {"prompt": "Should I respect the ayllu's decision?"}])
    assert load_task("cai_bo").has_references is False  # written all the same
    assert "warning:" in out and "similarity will be n/a on every prompt" in out
    assert "judge" in out  # and which scorers need no reference

    part = _new(tmp_path, "cai_bo_part", [{"prompt": "A?", "reference": "Yes."}, {"prompt": "B?"}])
    assert "warning:" not in part and "1 of 2 prompts have no reference" in part

    full = _new(tmp_path, "cai_bo_full", [{"prompt": "A?", "reference": "Yes."}])
    assert "n/a" not in full and "warning" not in full
