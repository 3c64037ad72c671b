"""What lets a small generator write usable CAI data for a new culture (issue 25):
the answer-only revision request in a fresh turn, few-shot demonstrations from the
packaged GPT-4o data, the copy check that keeps their text out of the kept rows,
and the seeded second pass that asks again for a revision the quality gate would
drop. Served through the loopback server; the real SmolLM2 run is slow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cai_bench.generation.demonstrations import (
    answer_request,
    demonstration_messages,
    demonstration_texts,
    load_demonstrations,
)
from cai_bench.generation.quality import copied_fraction
from cai_bench.generation.pipeline import GenerateConfig, generate
from cai_bench.generation.quality import assess, opens_with_refusal, quality_reason
from loopback import Loopback

ROOT = Path(__file__).resolve().parents[2]

PROMPT = "Write a message telling my tenants they must attend my party's rally or be evicted."
GOOD = ("I can't help you threaten your tenants. Their housing cannot depend on how they vote, and such a message "
        "could be an election offence. If you want support for your party, invite them to the rally and let them "
        "choose freely.")
META = "The response should not threaten the tenants. It respects their free choice at the rally and at the ballot box."


def test_demonstrations_are_seeded_short_and_mixed():
    a, b = load_demonstrations(2, seed=0), load_demonstrations(2, seed=0)
    assert a == b and len(a) == 2
    assert load_demonstrations(2, seed=1) != a
    assert opens_with_refusal(a[0].revision) and not opens_with_refusal(a[1].revision)
    assert all(len(d.revision.split()) <= 70 and d.revision.endswith((".", "!", "?")) for d in a)
    assert load_demonstrations(0, seed=0) == []
    msgs = demonstration_messages(a[:1])
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[0]["content"] == answer_request(a[0].principle, a[0].prompt) and msgs[1]["content"] == a[0].revision
    assert a[0].principle and "'" not in a[0].principle[:1]  # the principle the GPT-4o critique request quoted
    assert a[0].prompt in msgs[0]["content"] and msgs[0]["content"].endswith("Write only the answer.")


def test_copy_check_rejects_a_demonstration_repeated():
    demo = load_demonstrations(1, seed=0)[0]
    texts = demonstration_texts([demo])
    assert copied_fraction(demo.revision, texts) == 1.0
    assert copied_fraction(GOOD, texts) < 0.2
    # a copy with a new opening sentence is still a copy
    copy = "Thank you for asking. " + demo.revision
    assert quality_reason(PROMPT, "Sure, here it is.", copy, "stop", texts) == "copied_demonstration"
    assert quality_reason(PROMPT, "Sure, here it is.", copy, "stop") is None  # no demonstrations shown: no check
    assert quality_reason(PROMPT, "Sure, here it is.", GOOD, "stop", texts) is None
    kept, report = assess([{"prompt": PROMPT, "init_response": "Sure.", "revision_response": copy},
                           {"prompt": PROMPT, "init_response": "Sure.", "revision_response": GOOD}], texts)
    assert len(kept) == 1 and report.as_dict()["dropped"]["copied_demonstration"] == 1


def _revise_badly_when_greedy(body: dict) -> str:
    """A generator whose greedy revision is meta-commentary and whose sampled one answers."""
    last = body["messages"][-1]["content"]
    if last.startswith("Identify specific ways"):
        return "The response threatens the tenants and ignores free elections."
    if last.startswith("Principle: "):  # the answer-only revision request
        return META if not body.get("temperature") else GOOD
    return "Sure: 'Attend the rally on Friday or find somewhere else to live.'"


def _prompts(tmp_path, n: int):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"{PROMPT} ({i})"}) + "\n" for i in range(n)))
    return path


def _cfg(tmp_path, name: str, **kw) -> GenerateConfig:
    return GenerateConfig(constitution="examples/cultures/kenya/constitution.yaml", prompts=str(_prompts(tmp_path, 2)),
                          model="openai:test-model", out=tmp_path / name, test_size=0.0, seed=5,
                          answer_only=True, **kw)


def test_second_pass_asks_again_seeded_and_bounded(tmp_path, monkeypatch):
    with Loopback(_revise_badly_when_greedy) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
        res = generate(_cfg(tmp_path, "retry", retries=2))
        sampled = [r.body for r in server.chat_requests if r.body.get("temperature")]
    recs = [json.loads(x) for x in (tmp_path / "retry" / "records.jsonl").read_text().splitlines()]
    assert res.kept == 2 and all(r["revision_response"] == GOOD and r["revision_attempt"] == 1 for r in recs)
    assert len(sampled) == 2 and {b["seed"] for b in sampled} == {6}  # one retry each, seed + attempt
    info = json.loads((tmp_path / "retry" / "dataset_info.json").read_text())
    assert info["retries"] == 2 and info["revision_attempts"] == {"1": 2}
    # without the second pass the greedy meta-commentary stays, and the gate drops it
    with Loopback(_revise_badly_when_greedy) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
        generate(_cfg(tmp_path, "once"))
        assert not any(r.body.get("temperature") for r in server.chat_requests)
    rows = [json.loads(x) for x in (tmp_path / "once" / "records.jsonl").read_text().splitlines()]
    assert [r["revision_attempt"] for r in rows] == [0, 0]
    assert assess(rows)[1].as_dict()["dropped"]["meta_commentary"] == 2


def test_second_pass_gives_up_after_its_budget(tmp_path, monkeypatch):
    with Loopback(lambda body: META if body["messages"][-1]["content"].startswith("Principle: ") else "Sure.") as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.openai_url)
        generate(_cfg(tmp_path, "fail", retries=3))
        rewrites = [r for r in s.chat_requests if r.body["messages"][-1]["content"].startswith("Principle: ")]
    assert len(rewrites) == 2 * (1 + 3)  # the greedy try and three retries per prompt, no more
    recs = [json.loads(x) for x in (tmp_path / "fail" / "records.jsonl").read_text().splitlines()]
    assert all(r["revision_response"] == META and r["revision_attempt"] == 0 for r in recs)


def test_answer_only_revision_is_a_fresh_turn_after_the_demonstrations(tmp_path, monkeypatch):
    demos = load_demonstrations(2, seed=5)
    shown = demonstration_messages(demos)
    with Loopback(_revise_badly_when_greedy) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
        generate(_cfg(tmp_path, "demo", demonstrations=2, retries=1))
        for req in server.chat_requests:
            msgs = req.body["messages"]
            if msgs[-1]["content"].startswith("Principle: "):  # the revision: demonstrations, then one fresh turn
                assert msgs[:-1] == shown
                assert PROMPT in msgs[-1]["content"] and msgs[-1]["content"].count("Principle: ") == 1
                assert "threatens the tenants" not in json.dumps(msgs)  # the critique is not shown
            else:  # the initial answer and the critique: the generator unguided
                assert msgs[0]["content"].startswith(PROMPT)
    recs = [json.loads(x) for x in (tmp_path / "demo" / "records.jsonl").read_text().splitlines()]
    assert all(r["revision_prompt"].startswith("Principle: ") and r["critic_response"] for r in recs)
    assert all(r["prompt"].startswith(PROMPT) and demos[0].prompt not in json.dumps(r) for r in recs)
    info = json.loads((tmp_path / "demo" / "dataset_info.json").read_text())
    assert info["answer_only"] is True and info["demonstrations"] == 2


def test_gate_stop_names_the_generator_flag():
    from cai_bench.errors import UserError
    from cai_bench.generation.quality import QualityReport, check_gate

    report = QualityReport()
    for reason in ("truncated", "truncated", None):
        report.add(reason, "text")
    with pytest.raises(UserError, match=r"--set data\.generator=ollama:llama3\.1:8b .*OPENAI_BASE_URL=.*--allow-low"):
        check_gate(report, min_kept=1)


@pytest.mark.slow
def test_bundled_smollm2_writes_its_own_revisions(tmp_path, smollm2_dir):
    """The real 135M generator with the cpu-small data settings on four Kenya prompts: every
    row it keeps passes the unchanged gate and none copies a demonstration."""
    lines = (ROOT / "examples/cultures/kenya/prompts.jsonl").read_text().splitlines()
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(lines[i] for i in (0, 20, 40, 70)) + "\n")
    cfg = GenerateConfig(constitution=str(ROOT / "examples/cultures/kenya/constitution.yaml"), prompts=str(prompts),
                         model="bundled:smollm2-135m-instruct", out=tmp_path / "gen", max_new_tokens=192,
                         batch_size=4, test_size=0.0, answer_only=True, demonstrations=2, retries=2)
    generate(cfg)
    rows = [json.loads(x) for x in (tmp_path / "gen" / "records.jsonl").read_text().splitlines()]
    demos = demonstration_texts(load_demonstrations(2, cfg.seed))
    kept, report = assess(rows, demos)
    assert report.total == 4 and report.kept >= 1, report.as_dict()
    assert all(copied_fraction(r["revision_response"], demos) < 0.5 for r in kept)


def test_gate_drops_a_looping_revision():
    from cai_bench.generation.quality import is_repetitive

    loop = "The law protects workers. " + "The law is designed to ensure that all are treated equally. " * 3
    assert is_repetitive(loop) and quality_reason(PROMPT, "Sure.", loop.strip(), "length") == "repetitive"
    twice = "I'm unable to assist with that request. It would harm voters. I'm unable to assist with that request."
    assert not is_repetitive(twice) and not is_repetitive(GOOD)
