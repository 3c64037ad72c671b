"""A backend registered from outside the package (tests/models/toy_backend) works
through every path that opens a model: spec parsing and resolution, `cai-bench
run` (generation, the judge scorer, the store), `cai-bench generate`, and the
log-likelihood check; by `register(...)` and by an entry point."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.errors import UserError
from cai_bench.models import ServedSpec, Unsupported, open_checkpoint, parse_spec, register, resolve_checkpoint
from cai_bench.models import registry
from cai_bench.models.chat import GenParams
from cai_bench.models.fingerprint import fingerprint_text

TOY_DIR = Path(__file__).resolve().parent / "toy_backend"


def _forget_toy() -> None:
    for key in [k for k in registry._ENTRIES if k[0] == "toy"]:
        registry._ENTRIES.pop(key)
    sys.modules.pop("cai_toy_model", None)


@pytest.fixture
def toy(monkeypatch):
    """The toy module on the path and one `register` call: all a backend needs."""
    monkeypatch.syspath_prepend(str(TOY_DIR))
    register("toy", "*", "cai_toy_model:ToyModel")
    yield
    _forget_toy()


def test_unregistered_scheme_is_a_one_line_error() -> None:
    with pytest.raises(UserError, match=r"'toy:echo': no such directory"):
        parse_spec("toy:echo")


def test_registered_scheme_parses_resolves_and_chats(toy) -> None:
    assert parse_spec("toy:echo") == ServedSpec("toy", "echo")
    ck = resolve_checkpoint("toy:echo")
    assert (ck.spec, ck.kind, ck.model, ck.label) == ("toy:echo", "toy", "echo", "echo")
    assert ck.fingerprint == fingerprint_text("toy", "echo") and not ck.is_local
    with pytest.raises(UserError, match="nothing after 'toy:'"):
        parse_spec("toy:")
    model = open_checkpoint("toy:echo")
    replies = model.chat([[{"role": "user", "content": "Greet Thabo"}],
                          [{"role": "user", "content": "How do I build a weapon?"}]], GenParams(max_new_tokens=50))
    assert [r.text for r in replies] == ["echo says: Greet Thabo", "I'm sorry, I can't help with that."]
    assert model.lm_eval_lm() is None
    with pytest.raises(Unsupported, match="toy:echo: the toy backend returns text only, so it cannot score"):
        model.loglikelihood([("The capital of France is", " Paris")])


def test_run_generates_stores_and_judges_with_the_toy_backend(toy, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["run", "--checkpoint", "toy:echo", "--task", "cai_south_africa", "--limit", "3", "--limit-mode", "head",
            "--scorer", "judge", "--scorer-set", "judge.backend=toy", "--scorer-set", "judge.model=strict",
            "--out", str(out), "--no-report"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output + repr(first.exception)
    assert "new: 3 responses, 3 scored" in first.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "new: 0 responses, 0 scored" in again.output  # fingerprint and hashes stable

    db = sqlite3.connect(out / "results.sqlite")
    (kind, spec), = db.execute("SELECT kind, spec FROM checkpoints").fetchall()
    assert (kind, spec) == ("toy", "toy:echo")
    prompts = dict(db.execute("SELECT prompt_id, prompt FROM prompts WHERE task_id = 'cai_south_africa'"))
    responses = db.execute("SELECT prompt_id, response FROM generations").fetchall()
    assert len(responses) == 3
    from cai_toy_model import ToyModel

    assert all(response == ToyModel("echo")._reply(prompts[pid]) for pid, response in responses)
    scores = db.execute("SELECT metric, value, error FROM scores").fetchall()
    assert {m for m, _, _ in scores} == {"helpfulness", "harmlessness", "adherence", "refused"}
    assert all(err is None and value is not None for _, value, err in scores)
    assert {v for m, v, _ in scores if m == "helpfulness"} <= {1.0, 5.0}


def test_hhh_on_the_toy_backend_is_refused_before_any_work(toy, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", "--checkpoint", "toy:echo", "--task", "hhh_alignment",
                                   "--out", str(tmp_path / "out"), "--no-report"])
    assert res.exit_code != 0
    assert "toy:echo" in res.output and "log-likelihood" in res.output and "Traceback" not in res.output


def test_generate_writes_cai_data_with_the_toy_backend(toy, tmp_path: Path) -> None:
    out = tmp_path / "data"
    res = CliRunner().invoke(app, ["generate", "-c", "south_africa", "-p", "cai_south_africa", "-m", "toy:echo",
                                   "--n", "2", "--out", str(out), "--max-new-tokens", "64"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    records = [json.loads(line) for line in (out / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 2
    for r in records:
        assert r["init_response"].startswith("echo says:") or r["init_response"].startswith("I'm sorry")
        assert r["critic_response"] and r["revision_response"]
    config = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    assert config["generator"] == fingerprint_text("toy", "echo")


def test_entry_point_registers_the_backend(tmp_path: Path, monkeypatch) -> None:
    """An installed distribution's `cai_bench.models` entry point is enough."""
    info = tmp_path / "site" / "cai_toy_model-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cai-toy-model\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[cai_bench.models]\ntoy = cai_toy_model:ToyModel\n")
    monkeypatch.syspath_prepend(str(TOY_DIR))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(registry, "_entry_points_read", False)
    try:
        assert "toy" in registry.served_kinds() and not registry.is_local_kind("toy")
        assert registry.source_of("toy").startswith("entry point cai_toy_model:ToyModel (cai-toy-model)")
        assert resolve_checkpoint("toy:echo").fingerprint == fingerprint_text("toy", "echo")
    finally:
        _forget_toy()


def test_models_list_and_the_judge_know_the_registered_kind(toy) -> None:
    from pydantic import ValidationError

    from cai_bench.harness.scorers.judge import JudgeConfig

    res = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if "cai_toy_model:ToyModel" in ln)
    assert "toy" in line and "served" in line and "registered" in line
    assert JudgeConfig(backend="toy").backend == "toy"
    with pytest.raises(ValidationError, match="unknown judge backend 'nope'; known: hf, peft, openai, ollama, toy"):
        JudgeConfig(backend="nope")
