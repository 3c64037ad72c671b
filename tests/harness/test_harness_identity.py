"""`cai-bench run` keyed by content: editing a prompt's text answers it anew,
editing only its reference re-scores the stored answer, and the report shows the
current versions only; `report --list-configs` names what the store holds."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.tasks import BUILTIN_DIR


def _run(*args: str) -> str:
    res = CliRunner().invoke(app, ["run", *args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def _task_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "za_edit"
    shutil.copytree(BUILTIN_DIR / "cai_south_africa", folder)
    yaml = folder / "task.yaml"
    yaml.write_text(yaml.read_text(encoding="utf-8").replace("id: cai_south_africa", "id: za_edit"), encoding="utf-8")
    return folder


def _edit(folder: Path, index: int, **fields: str) -> dict:
    lines = (folder / "prompts.jsonl").read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[index])
    rec.update(fields)
    lines[index] = json.dumps(rec, ensure_ascii=False)
    (folder / "prompts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rec


def test_rerun_after_editing_a_prompt_generates_anew(tmp_path: Path, smollm2_dir: Path) -> None:
    folder = _task_copy(tmp_path)
    out = tmp_path / "out"
    args = ["--checkpoint", str(smollm2_dir), "--task", str(folder), "--limit", "2", "--limit-mode", "head",
            "--scorer", "similarity", "--max-new-tokens", "4", "--out", str(out), "--no-report"]
    assert "new: 2 responses, 2 scored" in _run(*args)
    assert "new: 0 responses, 0 scored" in _run(*args)

    first = _edit(folder, 0, prompt="Tell me a short, kind story about a neighbour in Soweto.")
    assert "new: 1 responses, 1 scored" in _run(*args)  # the edited prompt only
    _edit(folder, 1, reference="A respectful answer that refuses and offers help.")
    assert "new: 0 responses, 1 scored" in _run(*args)  # same question: the answer is kept, scored anew

    db = out / "results.sqlite"
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from generations").fetchone() == (3,)  # the old answer stays stored
    sample = json.loads(con.execute("select sample_json from runs order by started_at desc limit 1").fetchone()[0])
    con.close()
    assert sample["za_edit"]["mode"] == "head" and sample["za_edit"]["n"] == 2  # the --limit draw is recorded
    assert sample["za_edit"]["prompt_ids"] == [first["id"], _edit(folder, 1)["id"]]
    res = CliRunner().invoke(app, ["report", "--out", str(out), "--format", "csv,parquet", "--no-show"])
    assert res.exit_code == 0, res.output
    import pandas as pd

    samples = pd.read_parquet(out / "report" / "samples.parquet")
    assert len(samples) == 2 and first["prompt"] in set(samples["prompt"])

    listed = CliRunner().invoke(app, ["report", "--out", str(out), "--list-configs"], terminal_width=250)
    assert listed.exit_code == 0, listed.output
    assert "Generation configs" in listed.output and "max_new_tokens=4" in listed.output
    assert "Scorer configs" in listed.output and "model_revision" in listed.output
    assert "1 stored answers are to earlier versions of prompts" in listed.output
    assert listed.output.count("finished") >= 4
