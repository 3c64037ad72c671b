"""The figures against independent implementations (sklearn, scipy) and
hand-computed values; the bootstrap CI against its normal approximation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from cai_bench.validity import stats


def test_auc_matches_sklearn_with_ties_and_orientation():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    v = np.round(rng.normal(size=200) - y, 1)  # bad rows (y=1) score lower; ties from rounding
    # oriented "higher is better": AUC = P(good outranks bad) = roc_auc of -v predicting y
    assert stats.auc(v, y) == pytest.approx(roc_auc_score(y, -v))
    assert stats.auc(v, y) > 0.6
    assert math.isnan(stats.auc(v, np.ones(200)))


def test_kappa_and_accuracy_match_sklearn():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    p = np.where(rng.random(300) < 0.8, y, 1 - y)
    assert stats.cohen_kappa(p, y) == pytest.approx(cohen_kappa_score(y, p))
    assert stats.accuracy(p, y) == pytest.approx((p == y).mean())
    assert stats.confusion(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 1])) == {"tp": 1, "fp": 1, "tn": 1, "fn": 1}


def test_correlations_match_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=100)
    y = x ** 3 + rng.normal(size=100) * 0.5
    assert stats.spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic)
    assert stats.pearson(x, y) == pytest.approx(sps.pearsonr(x, y).statistic)
    assert math.isnan(stats.spearman(np.ones(5), y[:5]))


def test_statistics_are_vectorized_over_resamples():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, (50, 40))
    v = rng.normal(size=(50, 40)) - y
    for fn, args in ((stats.auc, (v, y)), (stats.cohen_kappa, (v < -0.5, y)), (stats.spearman, (v, y)),
                     (stats.pearson, (v, y)), (stats.pairwise_accuracy, (v, -y)), (stats.accuracy, (v < 0, y))):
        batch = fn(*args)
        assert np.allclose(batch, [fn(*(a[i] for a in args)) for i in range(50)], equal_nan=True), fn.__name__


def test_bootstrap_ci_is_seeded_and_matches_the_normal_approximation():
    correct = np.array([1] * 160 + [0] * 40)  # accuracy 0.8 on 200 rows
    lo, hi = stats.bootstrap_ci(lambda c: c.mean(-1), [correct], seed=7)
    se = math.sqrt(0.8 * 0.2 / 200)
    assert lo == pytest.approx(0.8 - 1.96 * se, abs=0.012)
    assert hi == pytest.approx(0.8 + 1.96 * se, abs=0.012)
    assert (lo, hi) == stats.bootstrap_ci(lambda c: c.mean(-1), [correct], seed=7)
    assert (lo, hi) != stats.bootstrap_ci(lambda c: c.mean(-1), [correct], seed=8)


def counts(n: int) -> stats.Counts:
    return stats.Counts(total=n, valid=n)


def test_binary_perfect_inverted_constant():
    y = [1] * 20 + [0] * 20
    perfect = [0.1] * 20 + [0.9] * 20
    a = stats.binary_agreement(perfect, y, counts(40), direction="higher", threshold=0.5)
    assert a.figures["auc"] == stats.Figure(1.0, 1.0, 1.0)
    assert a.figures["accuracy"].value == 1.0 and a.figures["kappa"].value == 1.0
    assert a.confusion == {"tp": 20, "fp": 0, "tn": 20, "fn": 0}
    assert a.verdict == "agrees"
    inv = stats.binary_agreement([0.9] * 20 + [0.1] * 20, y, counts(40), direction="higher", threshold=0.5)
    assert inv.figures["auc"].value == 0.0 and inv.figures["kappa"].value == -1.0
    assert inv.verdict == "inverted"
    const = stats.binary_agreement([0.5] * 40, y, counts(40), direction="higher", threshold=0.5)
    assert const.figures["auc"] == stats.Figure(0.5, 0.5, 0.5)
    assert const.figures["accuracy"].value == 0.5 and const.figures["kappa"].value == 0.0
    assert const.verdict == "chance"
    assert "AUC 0.50 [0.50, 0.50], 40 of 40 valid: at chance level" == const.summary()


def test_binary_direction_lower_and_positive_good():
    y = [1] * 10 + [0] * 10  # 1 = flagged by people
    flagged = [1.0] * 10 + [0.0] * 10  # a "lower is better" flag that agrees
    a = stats.binary_agreement(flagged, y, counts(20), direction="lower", threshold=0.5)
    assert a.figures["auc"].value == 1.0 and a.figures["accuracy"].value == 1.0
    # the same labels coded as "1 = good" give the same figures once said so
    b = stats.binary_agreement(flagged, [1 - v for v in y], counts(20), direction="lower", threshold=0.5,
                               positive_is="good")
    assert b.figures["auc"].value == 1.0 and b.confusion == {"tp": 10, "fp": 0, "tn": 10, "fn": 0}


def test_no_threshold_means_no_accuracy_and_random_is_chance():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300).tolist()
    a = stats.binary_agreement(rng.normal(size=300).tolist(), y, counts(300), direction="higher", threshold=None)
    assert set(a.figures) == {"auc"} and a.notes
    assert a.figures["auc"].lo < 0.5 < a.figures["auc"].hi
    assert a.verdict == "chance"


def test_too_few_rows_is_insufficient_not_a_verdict():
    a = stats.binary_agreement([0.1, 0.9, 0.2, 0.8], [1, 0, 1, 0], stats.Counts(total=80, valid=4, unscored=76),
                               direction="higher", threshold=0.5)
    assert a.verdict == "insufficient"
    assert a.summary().endswith("4 of 80 valid (76 unscored): too few valid rows to judge")


def test_graded_and_pairwise():
    x = np.linspace(0, 1, 30)
    g = stats.graded_agreement((x ** 3).tolist(), (x * 5).tolist(), counts(30), direction="higher")
    assert g.figures["spearman"].value == pytest.approx(1.0) and g.figures["pearson"].value < 1.0
    assert g.verdict == "agrees"
    inv = stats.graded_agreement((-x).tolist(), x.tolist(), counts(30), direction="higher")
    assert inv.figures["spearman"].value == pytest.approx(-1.0) and inv.verdict == "inverted"
    p = stats.pairwise_agreement([0.9] * 15 + [0.5] * 5, [0.1] * 15 + [0.5] * 5, counts(20), direction="higher")
    assert p.figures["pairwise_accuracy"].value == pytest.approx((15 + 2.5) / 20)
    assert "5 tied pair(s)" in p.notes[0]
    lower = stats.pairwise_agreement([0.1] * 12, [0.9] * 12, counts(12), direction="lower")
    assert lower.figures["pairwise_accuracy"].value == 1.0


def test_agreement_round_trips_through_json():
    import json

    a = stats.binary_agreement([0.1] * 10 + [0.9] * 10, [1] * 10 + [0] * 10, counts(20), direction="higher",
                               threshold=0.5)
    back = stats.Agreement.from_dict(json.loads(json.dumps(a.to_dict())))
    assert back.summary() == a.summary() and back.confusion == a.confusion
