"""`cai-bench constitutions list|show|validate` end to end."""

from __future__ import annotations

from typer.testing import CliRunner

from cai_bench.cli import app

runner = CliRunner()


def test_list_and_show(home):
    r = runner.invoke(app, ["constitutions", "list"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for cid, n in (("anthropic", "16"), ("grok", "2"), ("south_africa", "22"), ("romania", "33")):
        assert cid in r.output and n in r.output
    r = runner.invoke(app, ["constitutions", "show", "romania"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "Spirituality" in r.output and "33 principles" in r.output


def test_validate_exit_codes(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("id: k\nname: K\nculture: K\nprinciples:\n  - id: a\n    title: A\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: K!\nname: K\nculture: K\nprinciples: []\n")
    r = runner.invoke(app, ["constitutions", "validate", str(good)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["constitutions", "validate", str(good), str(bad)], env={"COLUMNS": "300"})
    assert r.exit_code == 2
    assert "bad.yaml:1: id:" in r.output and "bad.yaml:4: principles:" in r.output


def test_show_unknown_is_exit_2(home):
    r = runner.invoke(app, ["constitutions", "show", "atlantis"])
    assert r.exit_code == 2 and "unknown constitution 'atlantis'" in r.output
