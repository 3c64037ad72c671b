"""Built-in constitutions: counts, content from the real sources, the template."""

from __future__ import annotations

import json

import pytest

from cai_bench.constitutions import (
    CRITIQUE_TEMPLATE,
    Constitution,
    list_constitutions,
    load_constitution,
    render_requests,
)
from cai_bench.errors import UserError


def test_builtin_counts(home):
    got = {c.id: (len(c.principles), len(c.few_shot)) for c in list_constitutions()}
    assert got == {"anthropic": (16, 4), "grok": (2, 4), "south_africa": (22, 0), "romania": (33, 0)}


def test_anthropic_matches_llm_swarm(home, public_data):
    raw = json.loads((public_data / "llm_swarm_constitutions/constitution_anthropic.json").read_text())
    c = load_constitution("anthropic")  # the sample holds the first pairs and chats of the upstream file
    n, k = len(raw["constitutions"]), len(raw["system_chat"])
    assert n >= 2 and k >= 1
    assert [p.critique for p in c.principles[:n]] == [x["critic"] for x in raw["constitutions"]]
    assert [p.revision for p in c.principles[:n]] == [x["revision"] for x in raw["constitutions"]]
    assert c.few_shot[:k] == raw["system_chat"]
    assert "MIT" in c.license


def test_romania_keeps_category_and_template(home, public_data):
    raw = json.loads((public_data / "bluedot_cai/constitutions/ro_principles.json").read_text())
    c = load_constitution("romania")  # the sample holds the first principles of the upstream list
    assert [p.category for p in c.principles[:len(raw)]] == [r["category"] for r in raw]
    assert [p.title for p in c.principles[:len(raw)]] == [r["title"].strip() for r in raw]
    p = c.principles[0]
    assert (p.critique, p.revision) == render_requests(p.title, p.description)
    assert p.title in p.critique and p.description[:40] in p.critique


def test_south_africa_ids_are_title_slugs(home):
    c = load_constitution("south_africa")
    assert c.principles[10].id == "ubuntu_humanity_towards_others"
    assert c.culture == "ZA"
    assert c.principle("ubuntu_humanity_towards_others").title.startswith("Ubuntu")


def test_unknown_principle_is_user_error(home):
    with pytest.raises(UserError, match="no principle 'nope'"):
        load_constitution("grok").principle("nope")


def test_missing_requests_filled_by_template():
    c = Constitution.model_validate({
        "id": "x", "name": "X", "culture": "XX",
        "principles": [{"id": "kind", "title": "Kindness", "description": "Be kind to people"}],
    })
    assert c.principles[0].critique == CRITIQUE_TEMPLATE.format(title="Kindness", description="Be kind to people.")
    assert "path" not in c.model_dump()
