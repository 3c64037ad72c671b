"""Issue 17.10: one max_new_tokens default, the task's own, in every entry point, so
that the embedded default, a run config without `generation:` and plain flags
produce the same generation identity (nothing is generated twice)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.harness.config import RunConfig, apply_overrides, default_config, load_config_file
from cai_bench.harness.runner import make_plan
from cai_bench.tasks import load_task


def test_every_run_entry_point_uses_the_tasks_own_length(tmp_path: Path, smollm2_dir: Path) -> None:
    spec = str(smollm2_dir)
    embedded = default_config().model_copy(update={"checkpoints": [spec]})
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text(f"checkpoints: [{spec}]\ntasks: [cai_south_africa, cai_romania]\nlimit: 4\n")
    from_file = load_config_file(yaml_file)
    base = default_config()
    from_flags = apply_overrides(RunConfig(tasks=base.tasks, scorers=base.scorers), checkpoints=[spec], limit=4)
    plans = [make_plan(c) for c in (embedded, from_file, from_flags)]
    hashes = [sorted((u.task_id, u.gen_hash) for u in p.units) for p in plans]
    assert hashes[0] == hashes[1] == hashes[2]
    for t in plans[0].tasks:
        assert plans[0].sampling[t.id].max_new_tokens == load_task(t.id).generation.max_new_tokens


def test_generate_defaults_to_the_prompt_tasks_length(tmp_path: Path, home: Path) -> None:
    from cai_bench.generation.prompts import default_max_new_tokens

    src = tmp_path / "p.jsonl"
    src.write_text(json.dumps({"prompt": "Should I greet my elders first?", "reference": "Yes."}) + "\n")
    res = CliRunner().invoke(app, ["tasks", "new", "cai_short", "--constitution", "south_africa",
                                   "--prompts", str(src), "--max-new-tokens", "48"])
    assert res.exit_code == 0, res.output
    assert load_task("cai_short").generation.max_new_tokens == 48
    assert default_max_new_tokens("cai_short") == 48
    assert default_max_new_tokens("cai_south_africa") == load_task("cai_south_africa").generation.max_new_tokens
    assert default_max_new_tokens(str(src)) == 256  # a plain prompts file: the task schema's default
    res = CliRunner().invoke(app, ["tasks", "new", "cai_plain", "--constitution", "south_africa",
                                   "--prompts", str(src)])
    assert res.exit_code == 0, res.output
    assert load_task("cai_plain").generation.max_new_tokens == 256
