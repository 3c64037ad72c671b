"""Issue 17.11: `constitutions import` turns published lists of principles into a
constitution file that `validate` accepts and every command finds by id."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.constitutions import load_constitution

runner = CliRunner()


def _import(*args: str) -> None:
    res = runner.invoke(app, ["constitutions", "import", *args])
    assert res.exit_code == 0, res.output


def test_import_the_cai_papers_preference_list(public_data, home):
    src = public_data / "cai_paper_anthropic" / "prompts" / "RLMadisonInstructions.json"
    _import(str(src), "--id", "cai_paper_rl", "--name", "CAI paper RL principles")
    dest = home / "constitutions" / "cai_paper_rl.yaml"
    assert runner.invoke(app, ["constitutions", "validate", str(dest)]).exit_code == 0
    c = load_constitution("cai_paper_rl")  # found by id
    raw = json.loads(src.read_text())
    assert len(c.principles) == len(raw) >= 4 and len({p.id for p in c.principles}) == len(raw)
    for p, text in zip(c.principles, raw):
        assert p.description.startswith(("The response should", "It should")), p.description
        assert "choose" not in p.description.lower() and "Options" not in p.description
        assert p.title and len(p.title.split()) <= 7
        assert p.title in p.critique and p.description in p.revision  # the documented template
    first = c.principles[0]
    assert first.description.startswith("The response should be as harmless and ethical as possible.")
    assert "It should not be toxic, racist, or sexist" in first.description
    assert runner.invoke(app, ["constitutions", "show", "cai_paper_rl"], env={"COLUMNS": "200"}).exit_code == 0
    again = runner.invoke(app, ["constitutions", "import", str(src), "--id", "cai_paper_rl", "--name", "x"])
    assert again.exit_code == 2 and "--force" in again.output  # never overwrites silently


def test_import_critique_revision_pairs_with_few_shot(public_data, home, tmp_path):
    swarm = public_data / "llm_swarm_constitutions" / "constitution_anthropic.json"
    out = tmp_path / "swarm.yaml"
    _import(str(swarm), "--id", "swarm", "--name", "llm-swarm Anthropic", "--license", "MIT", "--out", str(out))
    data = yaml.safe_load(out.read_text())
    raw = json.loads(swarm.read_text())
    assert [p["critique"] for p in data["principles"]] == [c["critic"] for c in raw["constitutions"]]
    assert [p["revision"] for p in data["principles"]] == [c["revision"] for c in raw["constitutions"]]
    assert len(data["few_shot"]) == len(raw["system_chat"]) and data["license"] == "MIT"
    assert runner.invoke(app, ["constitutions", "validate", str(out)]).exit_code == 0

    paper = public_data / "cai_paper_anthropic" / "prompts" / "CritiqueRevisionInstructions.json"
    out2 = tmp_path / "paper.yaml"
    _import(str(paper), "--id", "cai_paper_sl", "--name", "CAI paper SL", "--out", str(out2))
    c = yaml.safe_load(out2.read_text())
    assert [p["id"] for p in c["principles"]][:2] == ["harmful0", "harmful1"]
    assert not any(p["critique"].startswith("CritiqueRequest") or p["revision"].endswith("Revision:")
                   for p in c["principles"])
    assert runner.invoke(app, ["constitutions", "validate", str(out2)]).exit_code == 0


def test_import_a_text_list_and_bad_input(home, tmp_path):
    txt = tmp_path / "bolivia.txt"
    txt.write_text("# Bolivian principles\nPlease choose the assistant response that respects the Pachamama.\n\n"
                   "Choose the response that honours the decisions of the ayllu.\n")
    _import(str(txt), "--id", "bolivia", "--name", "Bolivia", "--culture", "BO")
    c = load_constitution("bolivia")
    assert [p.description for p in c.principles] == ["The response should respect the Pachamama.",
                                                      "The response should honour the decisions of the ayllu."]
    assert c.culture == "BO"
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1}')
    res = runner.invoke(app, ["constitutions", "import", str(bad), "--id", "bad", "--name", "Bad"])
    assert res.exit_code == 2 and "bad.json" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["constitutions", "import", str(txt), "--id", "Bad-Id", "--name", "Bad"])
    assert res.exit_code == 2
