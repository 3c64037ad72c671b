"""The one input layer (cai_bench.io) and redaction (cai_bench.redact)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from cai_bench.errors import UserError
from cai_bench.io import (
    format_validation,
    hub_offline,
    json_from_text,
    load_yaml,
    read_jsonl,
    validate,
    validate_rows,
)
from cai_bench.redact import redact_obj, redact_text, redact_url


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    n: int = 0


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    items: list[Item]


def test_yaml_errors_name_file_line_field(tmp_path: Path) -> None:
    p = tmp_path / "d.yaml"
    p.write_text("name: x\nitems:\n  - id: a\n  - id: b\n    n: many\n  - id: c\n    colour: red\n")
    with pytest.raises(UserError) as e:
        validate(Doc, load_yaml(p), p)
    msg = str(e.value)
    assert f"{p}:5: items.1.n: Input should be a valid integer" in msg and "(got 'many')" in msg
    assert f"{p}:7: items.2.colour: unknown field" in msg and "\n" not in msg
    p.write_text("items: []\n")
    with pytest.raises(UserError, match=r"d\.yaml:1: name: missing required field"):
        validate(Doc, load_yaml(p), p)


@pytest.mark.parametrize("text, match", [
    ("a: [1,\n", r"x\.yaml:2: invalid YAML"),
    ("a: 1\na: 2\n", r"x\.yaml:2: invalid YAML: duplicate key 'a'"),
    ("a: !!python/object:os.system x\n", r"x\.yaml:1: invalid YAML"),
])
def test_yaml_syntax(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "x.yaml"
    p.write_text(text)
    with pytest.raises(UserError, match=match):
        load_yaml(p)


def test_non_utf8_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "x.yaml"
    p.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(UserError, match=r"x\.yaml:2: not valid UTF-8"):
        load_yaml(p)
    with pytest.raises(UserError, match="file not found"):
        load_yaml(tmp_path / "nope.yaml")


def test_jsonl_reader_and_rows(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text('\ufeff{"id": "a"}\n\n{"id": "b", "n": 2}\n')
    rows = read_jsonl(p)
    assert [n for n, _ in rows] == [1, 3]
    assert [i.n for i in validate_rows(p, rows, Item)] == [0, 2]
    p.write_text('{"id": "a"}\n[1]\n{"id": \n')
    with pytest.raises(UserError) as e:
        read_jsonl(p)
    assert f"{p}:2: expected a JSON object per line" in str(e.value) and f"{p}:3: invalid JSON" in str(e.value)
    p.write_text('{"id": 3}\n{"idd": "x"}\n')
    with pytest.raises(UserError) as e:
        validate_rows(p, read_jsonl(p), Item)
    assert f"{p}:1: id: Input should be a valid string" in str(e.value)
    assert f"{p}:2: id: missing required field" in str(e.value) and f"{p}:2: idd: unknown field" in str(e.value)
    p.write_text("\n")
    with pytest.raises(UserError, match="no records"):
        read_jsonl(p)


def test_formatter_without_line() -> None:
    with pytest.raises(Exception) as e:
        Item.model_validate({"id": 1})
    assert format_validation("--set", e.value) == "--set: id: Input should be a valid string (got 1)"


def test_hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "ON")
    assert not hub_offline() and hub_offline(datasets=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "true")
    assert hub_offline()


def test_json_from_text() -> None:
    assert json_from_text('```json\n{"a": 1}\n```') == {"a": 1}
    assert json_from_text('Sure: {"a": 1} and then {"a": 2}.', last=True) == {"a": 2}
    assert json_from_text('x {"b": {"id": "q"}} y', Item.model_validate) == Item(id="q")
    assert json_from_text("no json here") is None and json_from_text(None) is None
    assert json_from_text('{"id": 5}', Item.model_validate) is None


@pytest.mark.parametrize("url, shown", [
    ("https://user:pw@api.example.com/v1?api-key=SECRET&x=1", "https://***@api.example.com/v1?api-key=***&x=***"),
    ("postgresql+psycopg://bench:hunter2@db:5432/cai", "postgresql+psycopg://***@db:5432/cai"),
    ("http://tok3n@127.0.0.1:11434", "http://***@127.0.0.1:11434"),
    ("sqlite:////tmp/results.sqlite", "sqlite:////tmp/results.sqlite"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text() -> None:
    text = ("Connection error to https://a:b@h.example/x?key=zz (Authorization: Bearer abcdefghijkl, "
            "key sk-abcdefghijklmnop, api_key=hunter22, token hf_abcdefghijk, mine=MYSECRET123)")
    out = redact_text(text, "MYSECRET123")
    for secret in ("a:b@", "zz", "abcdefghijkl", "sk-abcdefghijklmnop", "hunter22", "hf_abcdefghijk", "MYSECRET123"):
        assert secret not in out, (secret, out)
    assert "h.example/x" in out
    assert redact_obj({"base_url": "http://u:p@h/v1", "n": [1, "ok"]}) == {"base_url": "http://***@h/v1",
                                                                           "n": [1, "ok"]}
