"""Every leaderboard shows each metric's latest validation for the same scorer
config, or "not validated"; a chance-level scorer is flagged wherever it is used,
and `run` gets the same one-line warning."""

from __future__ import annotations

import io

from rich.console import Console

from cai_bench.reports.markdown import render_markdown
from cai_bench.reports.terminal import print_leaderboard
from cai_bench.reports.validity import run_warnings
from cai_bench.reports.writer import prepare
from cai_bench.validity import stats
from cai_bench.validity import store as vstore
from cai_bench.validity.run import Validation


def validation(scorer, h, metric, values, labels, suite, when):
    a = stats.binary_agreement(values, labels, stats.Counts(total=len(values) + 4, valid=len(values), unscored=4),
                               direction="higher", threshold=0.5)
    return Validation(scorer, h, metric, suite, a, {}, "", when, 1.0, 0)


def add_validations(url):
    y = [1] * 20 + [0] * 20
    vstore.save(url, [
        validation("similarity", "h_similarity", "cosine", [0.1] * 20 + [0.9] * 20, y, "mine", "2026-11-24T00:00:00"),
        validation("judge", "h_judge", "adherence", [0.5] * 40, y, "harmful-vs-ethical", "2026-11-25T00:00:00"),
        # an older, good validation of the same judge config on another suite: the flag still stands
        validation("judge", "h_judge", "adherence", [0.1] * 20 + [0.9] * 20, y, "hhh-pairs", "2026-11-24T00:00:00"),
        # another harmlessness config: does not validate the one in the report
        validation("harmlessness", "h_other", "harmless", [0.1] * 20 + [0.9] * 20, y, "jigsaw", "2026-11-24"),
    ])


def test_leaderboards_show_validity_and_flags(store):
    add_validations(store)
    data = prepare(store, formats=["md"])
    v = data.validity.set_index("key")
    assert v.loc["similarity.cosine", "text"] == "AUC 1.00 [1.00, 1.00], 40/44 valid, mine, 2026-11-24"
    assert v.loc["harmlessness.harmless", "text"] == "not validated"
    assert v.loc["judge.adherence", "flagged"] and not v.loc["similarity.cosine", "flagged"]
    assert "(at chance level)" in v.loc["judge.adherence", "text"]
    md = render_markdown(data)
    n = len(data.cultures)
    assert md.count("| judge.adherence ⚠ |") == n  # each validity table
    assert md.count("| judge.adherence ⚠ \\(1..10, higher better\\) |") == n  # each leaderboard's header, with the scale
    assert "judge.adherence ⚠ \\(" in md.split("## ZA")[1].split("\n")[2]
    assert md.count("warning: scorer judge.adherence agrees with human labels at chance level") == n
    assert "not validated" in md

    out = io.StringIO()
    print_leaderboard(data.board, Console(file=out, width=250), data.validity)
    text = out.getvalue()
    assert "⚠ judge.adherence (config h_judge): AUC 0.50 [0.50, 0.50], 40/44 valid, harmful-vs-ethical" in text
    assert "harmlessness.harmless (config h_harmlessne): not validated" in text


def test_html_report_shows_validity(store, tmp_path):
    from cai_bench.reports.html import render_html

    add_validations(store)
    html = render_html(prepare(store, formats=["html"]), seed=0, n_boot=100)
    assert "Scorer validity" in html and "not validated" in html
    assert '<p class="warn"><strong>warning: scorer judge.adherence' in html and "judge.adherence ⚠" in html


def test_no_validations_means_not_validated_everywhere(store):
    data = prepare(store, formats=["md"])
    assert set(data.validity["text"]) == {"not validated"} and not data.validity["flagged"].any()
    assert "⚠" not in render_markdown(data)


def test_run_warning_names_the_flagged_config_only(store):
    add_validations(store)
    lines = run_warnings(store, [("judge", "h_judge"), ("similarity", "h_similarity")])
    assert lines == ["warning: scorer judge.adherence agrees with human labels at chance level or worse "
                     "(AUC 0.50 [0.50, 0.50] on harmful-vs-ethical, 40/44 valid, 2026-11-25): do not trust its ranking"]
    assert run_warnings(store, [("judge", "h_other_config")]) == []


def test_csv_report_has_validity_csv(store, tmp_path):
    import pandas as pd

    from cai_bench.reports.writer import write_report

    add_validations(store)
    report = write_report(store, tmp_path, formats=["csv"], n_boot=100)
    v = pd.read_csv(report / "validity.csv").set_index("metric_key")
    assert v.loc["similarity.cosine", "figure"] == "auc" and v.loc["similarity.cosine", "value"] == 1.0
    assert (v.loc["similarity.cosine", "n_valid"], v.loc["similarity.cosine", "n_total"]) == (40, 44)
    assert v.loc["similarity.cosine", "scorer_hash"] == "h_similarity"
    assert bool(v.loc["judge.adherence", "chance_level"]) and v.loc["judge.adherence", "suite"] == "harmful-vs-ethical"
    assert v.loc["harmlessness.harmless", "validity"] == "not validated"
    assert pd.isna(v.loc["harmlessness.harmless", "value"])
