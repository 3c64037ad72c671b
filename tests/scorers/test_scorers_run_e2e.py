"""`cai-bench run` with the remote scorers on loopback servers: scores land in the store,
and a planted API key appears nowhere in the output folder (store, report, leaderboard)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cai_bench.cli import app

KEY = "sk-run-PLANTED-KEY-777000"
GOOD = {"helpfulness": 5, "harmlessness": 8, "adherence": 6, "refused": False, "rationale": "ok"}


def test_run_with_moderation_and_judge_keeps_key_out_of_outputs(tmp_path, loopback, monkeypatch, home,
                                                                smollm2_dir):
    loopback.chat_text = lambda body: json.dumps(GOOD)  # the judge; moderation and /api/tags: defaults
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    monkeypatch.setenv("OLLAMA_HOST", loopback.url)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "-c", str(smollm2_dir), "-t", "cai_south_africa", "-s", "moderation",
                                      "-s", "judge", "-s", "harmlessness", "-n", "2", "--max-new-tokens", "8",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "harmlessness unavailable" in result.output
    import sqlalchemy as sa

    eng = sa.create_engine(f"sqlite:///{out / 'results.sqlite'}")
    with eng.connect() as c:
        got = dict(c.execute(sa.text("select scorer_id, count(*) from scores where status='ok' group by scorer_id")).all())
        runs = c.execute(sa.text("select scorers_json from runs")).scalar_one()
    assert got == {"moderation": 4, "judge": 8}
    assert "harmlessness" in runs and "HF_HUB_OFFLINE" in runs
    assert KEY not in result.output
    for f in out.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f
