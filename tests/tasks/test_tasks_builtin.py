"""Built-in tasks: counts, principle mapping, and that the vendored files are what
scripts/build_builtin_data.py makes from the public data (checked on the samples in tests/data)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

from cai_bench.constitutions import load_constitution
from cai_bench.tasks import list_tasks, load_task

ROOT = Path(__file__).resolve().parents[2]


def test_counts(home):
    got = {t.id: (len(t.prompts), t.constitution, t.has_references, t.output_type) for t in list_tasks()}
    assert got == {
        "cai_south_africa": (220, "south_africa", True, "generate_until"),
        "cai_romania": (330, "romania", True, "generate_until"),
        "cai_anthropic_harmless": (2178, "anthropic", False, "generate_until"),
        "xstest": (450, "anthropic", False, "generate_until"),
        # multiple_choice: items read from the (not vendored) HHH file when run, so no prompt records
        "hhh_alignment": (0, "anthropic", False, "multiple_choice"),
        "hhh_alignment_response": (0, "anthropic", False, "multiple_choice"),
    }


def test_red_team_keys_are_zero_based_principle_positions(home, public_data):
    for sub, tid, cid in (("sa", "cai_south_africa", "south_africa"), ("ro", "cai_romania", "romania")):
        raw = json.loads((public_data / f"bluedot_cai/{sub}/red_team_prompts.json").read_text())
        c = load_constitution(cid)
        task = load_task(tid)
        by_prompt = {p.prompt: p for p in task.prompts}
        for key, items in raw.items():
            principle = c.principles[int(key)]
            for n, item in enumerate(items, start=1):
                rec = by_prompt[item["adversarial_prompt"].strip()]
                assert rec.principle_id == principle.id
                assert rec.id == f"{principle.id}-{n}"
                assert rec.reference == item["correct_model_response_to_adversarial_prompt"].strip()
                assert rec.rejected == item["incorrect_model_response_to_adversarial_prompt"].strip()
    sa = load_task("cai_south_africa")
    assert "apartheid" in sa.prompt("human_dignity_and_equality-1").prompt
    assert Counter(p.principle_id for p in sa.prompts)["ubuntu_humanity_towards_others"] == 10
    assert {p.category for p in load_task("cai_romania").prompts} == {"Spirituality", "Ethics", "Culture", "Intellect"}


def test_xstest_and_harmless(home):
    x = load_task("xstest")
    assert Counter(p.expect for p in x.prompts) == {"comply": 250, "refuse": 200}
    assert all(p.expect == "refuse" for p in x.prompts if p.category.startswith("contrast_"))
    assert len({p.category for p in x.prompts}) == 18
    hh = load_task("cai_anthropic_harmless")
    assert len({p.prompt for p in hh.prompts}) == 2178 and all(p.expect == "refuse" for p in hh.prompts)


def test_vendored_data_is_reproducible(home, public_data):
    """The build script turns the sampled upstream rows into exactly the vendored records."""
    spec = importlib.util.spec_from_file_location("build_builtin_data", ROOT / "scripts/build_builtin_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sa = mod.bluedot(public_data, "revised_sac.json", "south_africa", "South Africa", "ZA", "")
    assert sa.principles == load_constitution("south_africa").principles  # the whole list is in the sample
    ro = mod.bluedot(public_data, "ro_principles.json", "romania", "Romania", "RO", "")
    assert ro.principles == load_constitution("romania").principles[:len(ro.principles)]
    # the red-team sample holds the first three principles' prompts: build against those three
    sampled = sa.model_copy(update={"principles": sa.principles[:3]})
    rebuilt = [mod.red_team_task(public_data, "sa", sampled, "cai_south_africa", ""), mod.harmless_task(public_data),
               mod.xstest_task(public_data)]
    for t in rebuilt:
        vendored = {p.id: p for p in load_task(t.id).prompts}
        assert len(t.prompts) >= 6 and all(p == vendored[p.id] for p in t.prompts), t.id
    assert {p.expect for p in rebuilt[2].prompts} == {"comply", "refuse"}
