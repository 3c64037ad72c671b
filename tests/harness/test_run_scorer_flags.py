"""Issue 17.1 and 17.2: `--scorer` keeps the config's scorer settings, `--scorer-set`
changes single settings, and the end of a run (and the report) says per scorer
what was scored, with the most common reason for what was not."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.harness.config import RunConfig, apply_scorer_flags


def _cfg(**kw) -> RunConfig:  # noqa: ANN003
    return RunConfig.model_validate({"checkpoints": ["x"], "tasks": ["cai_south_africa"], **kw})


def test_scorer_flag_keeps_the_configs_settings_and_sets_override() -> None:
    cfg = _cfg(scorers=["similarity", {"id": "judge", "backend": "hf", "model": "m", "max_tokens": 50}])
    picked = apply_scorer_flags(cfg, ["judge"])
    assert [(e.id, e.settings) for e in picked.scorers] == [("judge", {"backend": "hf", "model": "m",
                                                                        "max_tokens": 50})]
    every = apply_scorer_flags(cfg, ["all"])
    assert {e.id: e.settings for e in every.scorers}["judge"]["backend"] == "hf"
    changed = apply_scorer_flags(cfg, ["judge"], ["judge.max_tokens=64", "judge.backend=openai",
                                                  "judge.trust_remote_code=true", "judge.extra.deep=x"])
    assert changed.scorers[0].settings == {"backend": "openai", "model": "m", "max_tokens": 64,
                                           "trust_remote_code": True, "extra": {"deep": "x"}}
    # a setting for a scorer that 'all' brings in makes it an explicit entry
    assert apply_scorer_flags(_cfg(scorers=["all"]), (), ["judge.backend=hf"]).scorers[-1].settings == {
        "backend": "hf"}
    assert cfg.scorers[1].settings["max_tokens"] == 50  # the config itself is not changed


def test_bad_scorer_flags_are_one_line_errors(tmp_path: Path) -> None:
    base = ["run", "-c", "bundled:smollm2-135m-instruct", "-t", "cai_south_africa", "-o", str(tmp_path / "o")]
    cases = {
        ("--scorer-set", "judge"): "SCORER.KEY=VALUE",
        ("--scorer", "similarity", "--scorer-set", "judge.backend=hf"): "add --scorer judge",
        ("--scorer", "judge", "--scorer-set", "judge.bogus=1"): "bogus",
        ("--scorer", "judge", "--scorer-set", "judge.backend=nope"): "backend",
    }
    for extra, needle in cases.items():
        res = CliRunner().invoke(app, [*base, *extra])
        assert res.exit_code == 2, (extra, res.output)
        assert needle in res.output and "Traceback" not in res.output, (extra, res.output)
    assert not (tmp_path / "o" / "results.sqlite").exists()  # refused before any work


def _rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_run_keeps_judge_config_with_scorer_flag_and_reports_coverage(tmp_path: Path, smollm2_dir: Path) -> None:
    """The new user's run: a config configures an hf judge on the bundled SmolLM2, the
    command line names `--scorer judge`. The judge must be that one (not Ollama), and
    the end of the run must say what it scored."""
    out = tmp_path / "out"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "checkpoints": [str(smollm2_dir)], "tasks": ["cai_south_africa"], "limit": 1,
        "scorers": ["similarity", {"id": "judge", "backend": "hf", "model": str(smollm2_dir), "max_tokens": 16}],
        "generation": {"max_new_tokens": 8}, "out": str(out),
    }))
    # the judge is the checkpoint under test: allowed here (no self-grading otherwise, docs/scorers.md)
    res = CliRunner().invoke(app, ["run", str(config), "--scorer", "judge", "--scorer", "similarity",
                                   "--scorer-set", "judge.max_tokens=24", "--allow-self-grading", "--no-report"])
    assert res.exit_code == 0, res.output
    db = out / "results.sqlite"
    stored = [json.loads(c) for (c,) in _rows(db, "select distinct config_json from scorer_metrics "
                                                  "where scorer_id = 'judge'")]
    assert stored and all(c["backend"] == "hf" and c["model"] == str(smollm2_dir) and c["max_tokens"] == 24
                          for c in stored)
    assert "Ollama" not in res.output
    # the coverage recorded for the run matches the score rows in the store
    statuses = dict(_rows(db, "select scorer_id || ':' || status, count(*) from scores group by 1"))
    scorers = {s["id"]: s for s in json.loads(_rows(db, "select scorers_json from runs")[0][0])}
    judge = scorers["judge"]["coverage"]
    assert judge["rows"] == 4  # one response, four judge metrics
    for st in ("ok", "na", "unscored", "error"):
        assert judge[st] == statuses.get(f"judge:{st}", 0)
    assert scorers["similarity"]["coverage"]["ok"] == 1
    assert "Scorer coverage" in res.output
    assert ("warning: scorer judge scored only" in res.output) == (judge["ok"] < 2)
    if judge["ok"] < 4:
        assert judge["top_reason"] and judge["top_reason"] in " ".join(res.output.split())


def test_both_config_forms_mean_the_same_and_the_documented_one_validates(tmp_path: Path) -> None:
    """Issue 17.3: settings beside the id (the documented form) and nested under
    `settings:` give the same entries; every scorer block in docs/scorers.md is valid."""
    from cai_bench.harness.config import load_config_file
    from cai_bench.harness.scorers import build_scorer

    inline, nested = tmp_path / "a.yaml", tmp_path / "b.yaml"
    head = "checkpoints: [bundled:smollm2-135m-instruct]\ntasks: [cai_south_africa]\n"
    inline.write_text(head + "scorers: [{id: judge, backend: hf, max_tokens: 32}]\n")
    nested.write_text(head + "scorers: [{id: judge, settings: {backend: hf, max_tokens: 32}}]\n")
    assert load_config_file(inline).scorers == load_config_file(nested).scorers

    docs = (Path(__file__).resolve().parents[2] / "docs" / "scorers.md").read_text(encoding="utf-8")
    blocks = [b for b in docs.split("```yaml\n")[1:]]
    entries = [yaml.safe_load(b.split("```")[0])[0] for b in blocks if b.startswith("- id: ")]
    assert {e["id"] for e in entries} >= {"helpfulness", "harmlessness", "moderation", "judge"}
    for e in entries:
        assert "settings" not in e, e["id"]  # one form in the docs
        build_scorer(e["id"], {k: v for k, v in e.items() if k != "id"})  # unknown keys would raise
