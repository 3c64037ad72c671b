"""No self-grading: a judge that is the checkpoint under test (same fingerprint), or
the base of an adapter under test, is refused for that checkpoint; the override is
recorded in the scorer's config."""

from __future__ import annotations

import json

import sqlalchemy as sa
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.harness.scorers import build_scorer
from cai_bench.harness.self_grading import refusals
from cai_bench.models import resolve_checkpoint

GOOD = {"helpfulness": 5, "harmlessness": 8, "adherence": 6, "refused": False, "rationale": "ok"}


def _weights(folder, payload: bytes):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(payload)
    return folder


def _adapter(folder, base):
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    (folder / "adapter_model.safetensors").write_bytes(b"lora")
    return folder


def test_a_local_judge_is_refused_for_itself_and_for_adapters_of_it(tmp_path):
    judge_dir = _weights(tmp_path / "judge", b"judge weights")
    copy = _weights(tmp_path / "same-weights-elsewhere", b"judge weights")  # another path, same fingerprint
    other = _weights(tmp_path / "other", b"other weights")
    lora = _adapter(tmp_path / "lora", judge_dir)
    ckpts = [resolve_checkpoint(str(p)) for p in (copy, other, lora)]
    judge = build_scorer("judge", {"backend": "hf", "model": str(judge_dir)})
    got = refusals(judge, ckpts)
    assert [(r.checkpoint, r.relation) for r in got] == [
        ("same-weights-elsewhere", "is the checkpoint under test"), ("lora", "is the base of the adapter under test")]
    line = got[0].line()
    assert "\n" not in line and "refused for checkpoint same-weights-elsewhere" in line
    assert "allow_self_grading: true" in line and "--allow-self-grading" in line
    allowed = build_scorer("judge", {"backend": "hf", "model": str(judge_dir), "allow_self_grading": True})
    assert refusals(allowed, ckpts) == []
    assert allowed.config_hash != judge.config_hash  # self-graded scores are never mixed with the others
    assert allowed.identity()["settings"]["allow_self_grading"] is True
    assert "allow_self_grading" not in judge.identity()["settings"]  # the default leaves stored hashes alone


def test_a_served_judge_is_refused_for_the_same_served_model_and_a_panel_for_its_member(tmp_path):
    ck = resolve_checkpoint("ollama:llama3.1:8b")
    assert [r.judge for r in refusals(build_scorer("judge", {"backend": "ollama"}), [ck])] == ["ollama:llama3.1:8b"]
    assert refusals(build_scorer("judge", {"backend": "ollama", "model": "qwen2.5:7b"}), [ck]) == []
    panel = build_scorer("judge", {"panel": [{"backend": "ollama", "model": "qwen2.5:7b"},
                                             {"backend": "ollama"}]})
    assert [r.scorer_id for r in refusals(panel, [ck])] == ["judge"]


def test_run_refuses_self_grading_with_one_line_and_the_flag_records_it(tmp_path, loopback, monkeypatch, home):
    def text(body):
        return json.dumps(GOOD) if body.get("format") else "Hello there."

    loopback.chat_text = text
    monkeypatch.setenv("OLLAMA_HOST", loopback.url)
    out = tmp_path / "out"
    args = ["run", "-c", "ollama:llama3.1:8b", "-t", "cai_south_africa", "-s", "judge", "-n", "2", "-o", str(out),
            "--no-report"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if "refused for checkpoint" in ln]
    assert len(lines) == 1 and "llama3.1:8b" in lines[0], result.output
    eng = sa.create_engine(f"sqlite:///{out / 'results.sqlite'}")
    with eng.connect() as c:
        assert c.execute(sa.text("select count(*) from scores")).scalar_one() == 0
    result = CliRunner().invoke(app, [*args, "--allow-self-grading"])
    assert result.exit_code == 0, result.output
    assert "refused for checkpoint" not in result.output
    with eng.connect() as c:
        assert c.execute(sa.text("select count(*) from scores where status='ok'")).scalar_one() == 8
        cfgs = [json.loads(x) for x in c.execute(sa.text("select distinct config_json from scorer_metrics")).scalars()]
    refused, allowed = sorted(cfgs, key=lambda c: c["allow_self_grading"])  # both configs are recorded
    assert refused["allow_self_grading"] is False and "allow_self_grading" not in refused["identity"]["settings"]
    assert allowed["allow_self_grading"] is True and allowed["identity"]["settings"]["allow_self_grading"] is True
    result = CliRunner().invoke(app, ["report", "-o", str(out), "--format", "md", "--n-boot", "20", "--no-show"])
    assert result.exit_code == 0, result.output
    md = (out / "report" / "leaderboard.md").read_text()
    assert "**Self-grading allowed** (`allow_self_grading: true`): judge \\(" in md


def test_the_published_harm_scorers_are_refused_for_their_own_model(tmp_path):
    """A rubric judge (strongreject) or a classifier asked through the model contract is a judge too."""
    judge_dir = _weights(tmp_path / "judge", b"judge weights")
    lora = _adapter(tmp_path / "lora", judge_dir)
    ckpts = [resolve_checkpoint(str(lora)), resolve_checkpoint("ollama:llama3.1:8b")]
    for sid in ("strongreject", "harmbench_cls", "llama_guard"):
        local = build_scorer(sid, {"backend": "hf", "model": str(judge_dir)})
        assert [r.checkpoint for r in refusals(local, ckpts)] == ["lora"], sid
        served = build_scorer(sid, {"backend": "ollama", "model": "llama3.1:8b"})
        assert [r.judge for r in refusals(served, ckpts)] == ["ollama:llama3.1:8b"], sid
