"""Search path, duplicates and bad constitution files (file, line, field, reason)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cai_bench.constitutions import list_constitutions, load_constitution, validate_files
from cai_bench.errors import UserError

GOOD = textwrap.dedent("""\
    id: kenya
    name: Kenya
    culture: KE
    principles:
      - id: harambee
        title: Harambee
        description: Pull together for the common good.
""")


def write(p: Path, text: str | bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    return p


def test_extra_dir_and_env_path(home, tmp_path, monkeypatch):
    d = tmp_path / "mine"
    write(d / "kenya.yaml", GOOD)
    assert load_constitution("kenya", [d]).principles[0].critique
    with pytest.raises(UserError, match="unknown constitution 'kenya'"):
        load_constitution("kenya")
    monkeypatch.setenv("CAI_BENCH_PATH", str(d))
    assert "kenya" in {c.id for c in list_constitutions()}
    assert load_constitution(str(d / "kenya.yaml")).path == d / "kenya.yaml"


def test_same_id_twice_names_both_files(home, tmp_path):
    a = write(tmp_path / "a" / "k.yaml", GOOD)
    b = write(tmp_path / "b" / "k.yaml", GOOD.replace("name: Kenya", "name: Kenya 2"))
    with pytest.raises(UserError) as e:
        load_constitution("kenya", [a.parent, b.parent])
    assert str(a) in e.value.message and str(b) in e.value.message
    # an identical copy is the same definition, not a conflict
    write(tmp_path / "c" / "k.yaml", GOOD)
    assert load_constitution("kenya", [a.parent, tmp_path / "c"]).name == "Kenya"


def test_builtin_id_redefined_differently_is_never_shadowed(home, tmp_path, caplog):
    """A built-in id redefined by a stray file: the built-in is used and one
    warning names both files (it used to fail every command)."""
    fake = write(tmp_path / "g.yaml", GOOD.replace("id: kenya", "id: grok"))
    assert load_constitution("grok", [tmp_path]).path.parent.name == "builtin"
    assert any("'grok' is defined twice" in r.message and str(fake) in r.message for r in caplog.records)


@pytest.mark.parametrize("text, match", [
    ("id: k\nname: [unclosed\n", r"k\.yaml:3: invalid YAML: .*line 2"),
    (GOOD + "colour: red\n", r"k\.yaml:8: colour: unknown field"),
    (GOOD.replace("culture: KE\n", ""), r"k\.yaml:1: culture: missing required field"),
    (GOOD.replace("id: kenya", "id: ../kenya"), r"k\.yaml:1: id: .*must match"),
    (GOOD + "  - id: harambee\n    title: Again\n", r"k\.yaml:4: principles: .*duplicate principle id 'harambee'"),
    (GOOD.replace("    title: Harambee\n", ""), r"k\.yaml:5: principles\.0\.title: missing"),
    ("- just\n- a list\n", "expected a mapping"),
    (GOOD.replace("principles:", "principles: []\nx_principles:"), "principles"),
])
def test_bad_files(tmp_path, text, match):
    f = write(tmp_path / "k.yaml", text)
    with pytest.raises(UserError, match=match):
        load_constitution(str(f))


def test_non_utf8(tmp_path):
    f = write(tmp_path / "k.yaml", GOOD.encode() + b"description: caf\xe9\n")
    with pytest.raises(UserError, match=r"k\.yaml:8: not valid UTF-8"):
        load_constitution(str(f))


def test_bad_id_argument(home):
    with pytest.raises(UserError, match="must match"):
        load_constitution("Bad-Id")


def test_validate_reports_every_problem(tmp_path):
    a = write(tmp_path / "a.yaml", GOOD.replace("name: Kenya\n", "").replace("title: Harambee", "title: ''") + "x: 1\n")
    b = write(tmp_path / "b.yaml", "id: [\n")
    ok = write(tmp_path / "ok.yaml", GOOD)
    problems = validate_files([a, b, ok])
    assert any("a.yaml" in p and "name" in p for p in problems)
    assert any("a.yaml:7: x: unknown field" in p for p in problems)
    assert any("a.yaml" in p and "principles.0.title" in p for p in problems)
    assert any("b.yaml" in p and "invalid YAML" in p for p in problems)
    assert not any("ok.yaml" in p for p in problems)


def test_env_path_skips_other_yaml_but_extra_dir_is_strict(home, tmp_path, monkeypatch):
    d = tmp_path / "project"
    write(d / "recipe.yaml", "name: sft\nlr: 0.0002\n")
    write(d / "constitutions" / "kenya.yaml", GOOD)
    monkeypatch.setenv("CAI_BENCH_PATH", str(d))
    assert load_constitution("kenya").name == "Kenya"
    with pytest.raises(UserError, match="recipe.yaml"):
        load_constitution("kenya", [d])
