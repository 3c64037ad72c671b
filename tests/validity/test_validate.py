"""`validate` on tiny in-process scorers with known behaviour: the figures, the
CIs and the counts (unscored and failed rows counted, never dropped)."""

from __future__ import annotations

import pytest

from cai_bench.errors import UserError
from cai_bench.validity.run import threshold_for, validate
from cai_bench.validity.suites import LabelledRow, Pair


def rows(n: int = 40) -> list[LabelledRow]:
    return [LabelledRow(str(i), "q", "a BAD answer" if i % 4 < 2 else "a fine answer", 1.0 if i % 4 < 2 else 0.0)
            for i in range(n)]


def test_perfect_inverted_constant(toy):
    (perfect,) = validate(toy("perfect"), rows(), "binary", ["harmlessness"], suite="t")
    a = perfect.agreement
    assert (a.figures["auc"].value, a.figures["auc"].lo, a.figures["auc"].hi) == (1.0, 1.0, 1.0)
    assert a.figures["accuracy"].value == 1.0 and a.figures["kappa"].value == 1.0
    assert a.confusion == {"tp": 20, "fp": 0, "tn": 20, "fn": 0} and a.threshold == 0.5
    assert a.counts.text() == "40 of 40 valid" and a.verdict == "agrees"
    (inv,) = validate(toy("inverted"), rows(), "binary", ["harmlessness"], suite="t")
    assert inv.agreement.figures["auc"].value == 0.0 and inv.agreement.verdict == "inverted"
    (const,) = validate(toy("constant"), rows(), "binary", ["harmlessness"], suite="t")
    assert const.agreement.figures["auc"].value == 0.5 and const.agreement.verdict == "chance"
    assert const.agreement.figures["kappa"].value == 0.0


def test_lower_is_better_metric_is_oriented(toy):
    # `refused` is 1 - harmlessness for the toy: direction "lower", so a BAD row (label 1) gets 0.9
    (v,) = validate(toy("perfect"), rows(), "binary", ["refused"], suite="t")
    assert v.agreement.figures["auc"].value == 1.0 and v.agreement.figures["accuracy"].value == 1.0


def test_unscored_rows_are_counted_not_dropped(toy):
    (v,) = validate(toy("flaky"), rows(80), "binary", ["harmlessness"], suite="t")
    a = v.agreement
    assert (a.counts.total, a.counts.valid, a.counts.unscored) == (80, 40, 40)
    assert a.counts.valid_fraction == 0.5
    assert "40 of 80 valid (40 unscored)" in v.summary()
    assert a.figures["auc"].value == 1.0  # the valid half is still perfect


def test_failed_batches_are_error_rows(toy):
    (v,) = validate(toy("raises", batch_size=10), rows(40), "binary", ["harmlessness"], suite="t")
    c = v.agreement.counts
    assert (c.total, c.valid, c.error) == (40, 20, 20)  # batches 2 and 4 failed
    assert "20 of 40 valid (20 errors)" in v.summary()


def test_one_scoring_pass_for_all_metrics(toy):
    scorer = toy("perfect")
    out = validate(scorer, rows(40), "binary", ["harmlessness", "refused"], suite="t")
    assert [v.metric for v in out] == ["harmlessness", "refused"]
    assert scorer.calls == 1 and scorer.loaded  # 40 rows, default batch 64: one call for both metrics
    assert out[0].config_hash == scorer.config_hash


def test_graded_labels(toy):
    graded = [LabelledRow(str(i), "", f"level={i / 10} text", float(i)) for i in range(30)]
    (v,) = validate(toy("perfect"), graded, "graded", ["harmlessness"], suite="g", positive_is="good")
    assert v.agreement.figures["spearman"].value == pytest.approx(1.0)
    assert v.agreement.figures["pearson"].value == pytest.approx(1.0)
    (inv,) = validate(toy("inverted"), graded, "graded", ["harmlessness"], suite="g", positive_is="good")
    assert inv.agreement.figures["spearman"].value == pytest.approx(-1.0) and inv.agreement.verdict == "inverted"


def test_pairs(toy):
    pairs = [Pair(str(i), "q", "fine", "BAD") for i in range(20)]
    (v,) = validate(toy("perfect"), pairs, "pairwise", ["harmlessness"], suite="p")
    assert v.agreement.figures["pairwise_accuracy"].value == 1.0 and v.agreement.counts.total == 20
    (c,) = validate(toy("constant"), pairs, "pairwise", ["harmlessness"], suite="p")
    assert c.agreement.figures["pairwise_accuracy"].value == 0.5 and c.agreement.verdict == "chance"
    (f,) = validate(toy("flaky"), pairs, "pairwise", ["harmlessness"], suite="p")
    assert f.agreement.counts.unscored == 10 and f.agreement.counts.valid == 10


def test_unknown_metric_and_thresholds(toy):
    with pytest.raises(UserError, match="has no metric 'nope'; its metrics: harmlessness, refused"):
        validate(toy(), rows(), "binary", ["nope"], suite="t")
    spec = toy().metrics[0]
    assert threshold_for(spec, None) == 0.5 and threshold_for(spec, 0.7) == 0.7


def test_an_interrupted_validation_resumes(toy, tmp_path):
    """Answers scored before a crash are kept per scorer config; a re-run sends only the
    rest, and failed calls (error rows) are tried again."""
    from cai_bench.validity.rowcache import RowCache

    scorer = toy("raises", batch_size=10)  # batches 2 and 4 fail
    (first,) = validate(scorer, rows(40), "binary", ["harmlessness"], suite="t")
    assert first.agreement.counts.error == 20
    assert len(RowCache("toy", scorer.config_hash).rows) == 2  # two distinct texts, error rows not kept
    again = toy("raises", batch_size=10)
    (second,) = validate(again, rows(40), "binary", ["harmlessness"], suite="t")
    assert again.calls == 0 and second.agreement.counts.error == 0 and second.agreement.counts.valid == 40
    fresh = toy("raises", batch_size=10)
    validate(fresh, rows(40), "binary", ["harmlessness"], suite="t", resume=False)
    assert fresh.calls == 4
    other = toy("perfect", batch_size=10)  # another config hash: nothing reused
    validate(other, rows(40), "binary", ["harmlessness"], suite="t")
    assert other.calls == 4
