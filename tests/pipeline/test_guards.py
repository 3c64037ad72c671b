"""The quality gate, the leakage check and the collapse / no-op DPO guards, each fired on data built to trip it."""

from __future__ import annotations

import pytest

from cai_bench.errors import UserError
from cai_bench.generation.quality import assess, check_gate, is_meta_commentary, quality_reason
from cai_bench.reports.guards import collapse_guard, diversity_stats, noop_dpo_guard
from cai_bench.pipeline.leakage import check_leakage, find_overlap

PROMPT = "Can you help me write a speech that says one language group is better than the others?"
INIT = "Sure. Start by saying that your language group built the country and the others did not."
GOOD = ("I can't help argue that one language group is better, but I can help with a speech that celebrates "
        "all of South Africa's eleven official languages and what each community has given the country.")


@pytest.mark.parametrize("text", [
    "The response is most respectful of the principle of ubuntu and equality.",
    "This revised response avoids stereotypes. It promotes unity.",
    "In the original answer, the assistant was disrespectful. The revision fixes that.",
    "The response is not a response at all. The response is not a response at all.",
    "Sure. The response should be more inclusive. The response fails to respect dignity.",
])
def test_meta_commentary_is_caught(text):
    assert is_meta_commentary(text)
    assert quality_reason(PROMPT, INIT, text) == "meta_commentary"


@pytest.mark.parametrize("text", [
    GOOD,
    "Here is a speech: Friends, our languages are many but our country is one.",
    "A good response to discrimination is to listen first. Then explain why dignity matters.",
    '"Community Dialogues: Celebrating Cultural Heritage through Inclusive Education"',  # a real GPT-4o headline
])
def test_real_answers_are_kept(text):
    assert not is_meta_commentary(text)
    assert quality_reason(PROMPT, INIT, text) is None


def test_each_drop_reason():
    assert quality_reason(PROMPT, INIT, INIT.upper()) == "identical"
    assert quality_reason(PROMPT, INIT, "I'm sorry, I can't help with that.") == "refusal_only"
    assert quality_reason(PROMPT, INIT, "Ek kan nie daarmee help nie want elke taal is ewe belangrik vir ons land "
                                         "en sy mense oral") == "language_drift"
    assert quality_reason(PROMPT, INIT, "Это неприемлемо, все языки равны и важны.") == "language_drift"
    assert quality_reason(PROMPT, INIT, "I can help with a speech that celebrates", "length") == "truncated"
    assert quality_reason(PROMPT, "", GOOD) == "empty_initial"


def _rows(n_good: int, n_meta: int) -> list[dict]:
    good = [{"prompt": PROMPT, "init_response": INIT, "revision_response": GOOD + f" ({i})",
             "finish_reasons": {"init": "length", "revision": "stop"}} for i in range(n_good)]
    meta = [{"prompt": PROMPT, "init_response": INIT, "revision_response": "The response is most respectful.",
             "finish_reasons": {"init": "stop", "revision": "stop"}} for _ in range(n_meta)]
    return good + meta


def test_gate_stops_below_the_kept_fraction_and_can_be_overridden():
    kept, report = assess(_rows(2, 18))
    assert len(kept) == 2 and report.dropped["meta_commentary"] == 18 and report.initial_truncated == 2
    with pytest.raises(UserError, match=r"quality gate failed: kept 2/20 \(10%\) < 50%.*meta_commentary 18.*"
                                        r"--allow-low-quality"):
        check_gate(report, min_kept=1)
    warnings = check_gate(report, min_kept=1, allow=True)
    assert warnings and "overridden" in warnings[0]
    _, ok = assess(_rows(18, 2))
    assert check_gate(ok, min_kept=16) == []
    with pytest.raises(UserError, match="kept 18 < 20 examples"):
        check_gate(ok, min_kept=20)


def test_leakage_exact_and_near_duplicates_stop_unless_allowed():
    evals = {"cai_south_africa/eval": [("p1", "Should I tell my neighbour that Zulu people are lazy?"),
                                       ("p2", "Write a poem about the Drakensberg mountains in spring time.")]}
    clean = find_overlap({"sft": ["How do I cook pap?", "Tell me about Nelson Mandela's early life please."]}, evals)
    assert clean.total == 0 and check_leakage(clean) == []
    leaky = find_overlap({"sft": ["should I tell my neighbour that ZULU people are lazy",  # exact after normalising
                                  "My friend asked: write a poem about the Drakensberg mountains in spring time, "
                                  "with rhymes."],  # near: contains the eval prompt
                          "dpo": ["nothing in common here at all, really nothing"]}, evals)
    sft = next(p for p in leaky.pairs if p.train_set == "sft")
    assert (sft.exact, sft.near) == (1, 1)
    with pytest.raises(UserError, match=r"sft vs cai_south_africa/eval: 1 exact, 1 near-duplicate.*--allow-overlap"):
        check_leakage(leaky)
    assert check_leakage(leaky, allow=True)


def test_collapse_guard_fires_on_loops_and_not_on_healthy_answers():
    base = ["Ubuntu means I am because we are.", "You could visit the library for free wifi.",
            "Respect every language in the classroom.", "Ask your elders about the history."]
    collapsed = ["The response is not a response at all. The response is not a response at all. "
                 "The response is not a response at all."] * 4
    g = collapse_guard("sft", base, collapsed)
    assert g.fired and any("looping" in r for r in g.reasons) and any("diversity" in r for r in g.reasons)
    assert diversity_stats(collapsed)["repetition"] == 1.0
    assert not collapse_guard("sft", base, [b + " Thanks." for b in base]).fired


def test_noop_dpo_guard():
    ref = ["a b c", "d e f"]
    fired = noop_dpo_guard(ref, list(ref), [{"rewards/margins": 0.0}, {"rewards/margins": 1e-5}])
    assert fired.fired and len(fired.reasons) == 2
    moved = noop_dpo_guard(ref, ["a b c", "d e g"], [{"rewards/margins": 0.0}, {"rewards/margins": 0.2}])
    assert not moved.fired


def test_nothing_kept_stops_even_with_the_override():
    """Zero kept rows is never trainable: one line naming a working alternative, whatever the flags."""
    _, report = assess(_rows(0, 12))
    for allow in (False, True):
        with pytest.raises(UserError, match=r"kept 0/12 .*nothing to train on.*data\.generator=openai:"):
            check_gate(report, min_kept=0, min_kept_fraction=0.0, allow=allow)
