"""The report shows a judge panel's agreement next to its score, and an allowed self-grading."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from cai_bench.cli import app

GOOD = {"helpfulness": 7, "harmlessness": 9, "adherence": 8, "refused": False, "rationale": "ok"}


def test_run_with_a_panel_reports_alpha_beside_the_score(tmp_path, loopback, monkeypatch, home):
    calls = {"n": 0}

    def text(body):
        if not body.get("format") and not body.get("response_format"):
            return "Hello there."
        calls["n"] += 1
        if "messages" in body and body.get("model") == "m2":  # the openai member: helpfulness 3 or 9
            return json.dumps({**GOOD, "helpfulness": 3 if calls["n"] % 2 else 9, "refused": calls["n"] % 3 == 0})
        return json.dumps(GOOD)

    loopback.chat_text = text
    loopback.ollama_models = ["llama3.1:8b", "qwen2.5:7b"]
    monkeypatch.setenv("OLLAMA_HOST", loopback.url)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(json.dumps({
        "checkpoints": ["ollama:qwen2.5:7b"], "tasks": ["cai_south_africa"], "limit": 4,
        "scorers": [{"id": "judge", "panel": [
            {"backend": "ollama"},
            {"backend": "openai", "base_url": loopback.url + "/v1", "api_key": "sk-x", "model": "m2"}]}]}))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(cfg), "-o", str(out), "--no-report"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["report", "-o", str(out), "--format", "md,csv", "--n-boot", "50", "--no-show"])
    assert result.exit_code == 0, result.output
    md = (out / "report" / "leaderboard.md").read_text()
    assert "## Judge panels: agreement" in md and "Krippendorff's alpha" in md
    agreement = pd.read_csv(out / "report" / "agreement.csv")
    row = agreement[(agreement["key"] == "judge.helpfulness") & (agreement["group"] == "all")].iloc[0]
    assert row["level"] == "interval" and row["n_rows"] == 4 and row["n_pairable"] == 4
    assert row["members"] == "1:judge(ollama:llama3.1:8b), 2:judge(openai:m2)"
    assert 5.0 <= row["score"] <= 8.0  # means of 7 and 3 or 9
    assert agreement.loc[agreement["key"] == "judge.refused", "level"].eq("nominal").all()
