"""A leaderboard cell is flagged per culture: † when its scorer config was not validated
for that culture, ⚠ when a validation for that culture was at chance level."""

from __future__ import annotations

from cai_bench.reports.markdown import render_markdown
from cai_bench.reports.writer import prepare
from cai_bench.validity import stats
from cai_bench.validity import store as vstore
from cai_bench.validity.run import Validation


def pairwise(scorer, h, metric, better, worse, suite, when):
    a = stats.pairwise_agreement(better, worse, stats.Counts(total=len(better), valid=len(better)),
                                 direction="higher")
    return Validation(scorer, h, metric, suite, a, {}, "", when, 1.0, 0)


def header_of(md: str, culture: str, key: str) -> str:
    section = md.split(f"## {culture}\n")[1]
    header = next(line for line in section.split("\n") if line.startswith("| rank"))
    return next(h.strip() for h in header.split(" | ") if h.strip().startswith(key))


def test_cells_are_flagged_for_the_culture_their_scorer_was_not_validated_or_at_chance_for(store):
    vstore.save(store, [
        pairwise("judge", "h_judge", "adherence", [9.0] * 40, [2.0] * 40, "redteam-pairs[culture=ZA][40/220]",
                 "2026-12-01T00:00:00"),
        pairwise("judge", "h_judge", "adherence", [5.0] * 20 + [1.0] * 20, [5.0] * 20 + [9.0] * 20,
                 "redteam-pairs[culture=RO][40/330]", "2026-12-01T00:00:00"),
        # too few valid verdicts (a judge that never parsed) validates nothing
        pairwise("harmlessness", "h_harmlessness", "harmless", [], [], "redteam-pairs-za[culture=ZA][40/220]",
                 "2026-12-01T00:00:00"),
        # another config of the same scorer validates nothing here
        pairwise("similarity", "h_other", "cosine", [0.9] * 40, [0.1] * 40, "redteam-pairs-za[culture=ZA]",
                 "2026-12-01T00:00:00"),
    ])
    data = prepare(store, formats=["md"])
    cv = data.culture_validity.set_index(["key", "culture"])
    assert cv.loc[("judge.adherence", "ZA"), "status"] == "validated"
    assert cv.loc[("judge.adherence", "RO"), "status"] == "chance"
    assert cv.loc[("similarity.cosine", "ZA"), "status"] == "not validated"
    assert cv.loc[("judge.adherence", "xstest"), "status"] == "not validated"
    assert cv.loc[("harmlessness.harmless", "ZA"), "status"] == "not validated"
    md = render_markdown(data)
    assert header_of(md, "ZA", "judge.adherence").startswith("judge.adherence \\(")  # validated for ZA: no mark
    assert header_of(md, "RO", "judge.adherence").startswith("judge.adherence ⚠")
    assert header_of(md, "ZA", "similarity.cosine").startswith("similarity.cosine †")
    ro = md.split("## RO\n")[1]
    assert "⚠ at chance level or worse for RO: judge.adherence" in ro.replace("\\", "")
    assert "† not validated for RO:" in ro and "--by culture" in ro
