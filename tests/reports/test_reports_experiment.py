"""The experiment report: multiple-comparison corrections against known values, the
seeds-and-prompts bootstrap on data with a known answer, the transfer matrix,
per-principle movement, ablations, behaviour beside wording and the files written
(rows present, byte-identical on regeneration), on stores built with a known answer
(tests/reports/experiment_store.py)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.reports.experiment import experiment_report
from cai_bench.reports.statistics import adjust, bh, holm, paired_bootstrap, rng_for, seeds_prompts_bootstrap
from cai_bench.reports.terminal import print_experiment_verdicts
from cai_bench.reports.training_links import nearest, read_examples, task_prompts, training_links
from cai_bench.results import load_results_with_extras
from cai_bench.results.experiments import load_experiments
from cai_bench.results.loops import load_loops

sys.path.insert(0, str(Path(__file__).parent))
import experiment_store as ES  # noqa: E402

# Expected values computed once with statsmodels 0.15.0:
# statsmodels.stats.multitest.multipletests(P, method="holm" | "fdr_bh")[1]
P1 = [0.01, 0.04, 0.03, 0.005, 0.20, 0.04, 0.5]
HOLM1 = [0.06, 0.16, 0.15, 0.035, 0.4, 0.16, 0.5]
BH1 = [0.035, 0.056, 0.056, 0.035, 0.23333333333333336, 0.056, 0.5]
P2 = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
HOLM2 = [0.01, 0.072, 0.312, 0.312, 0.312, 0.312, 0.312, 0.615, 0.615, 0.615]
BH2 = [0.01, 0.04, 0.084, 0.084, 0.084, 0.1, 0.10571428571428572, 0.216, 0.216, 0.216]


@pytest.mark.parametrize(("p", "expected_holm", "expected_bh"), [(P1, HOLM1, BH1), (P2, HOLM2, BH2)])
def test_holm_and_bh_match_statsmodels(p, expected_holm, expected_bh) -> None:
    np.testing.assert_allclose(holm(p), expected_holm, rtol=1e-12)
    np.testing.assert_allclose(bh(p), expected_bh, rtol=1e-12)
    np.testing.assert_allclose(adjust(p, "bh"), expected_bh, rtol=1e-12)


def test_adjust_counts_only_real_tests() -> None:
    out = adjust([0.01, float("nan"), 0.04], "holm")
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1]) and out[2] == pytest.approx(0.04)
    with pytest.raises(ValueError, match="holm, bh"):
        adjust([0.1], "bonferroni")


def test_seeds_prompts_bootstrap_spread_is_the_known_one() -> None:
    """d[s, i] = mu + a_s + e_i: resampling seeds and prompts independently gives a mean
    whose variance is var(a)/S + var(e)/N (population variances), exactly in expectation."""
    gen = np.random.default_rng(7)
    a, e = gen.normal(0, 0.3, 10), gen.normal(0, 1.0, 200)
    d = 0.5 + a[:, None] + e[None, :]
    mean, lo, hi, _ = seeds_prompts_bootstrap(d, rng_for(0, "known"), 20000)
    sd = np.sqrt(a.var() / len(a) + e.var() / len(e))
    assert mean == pytest.approx(d.mean())
    assert (hi - lo) / (2 * 1.96) == pytest.approx(sd, rel=0.08)
    assert lo < mean < hi


def test_seeds_prompts_bootstrap_one_seed_is_the_paired_bootstrap() -> None:
    d = np.random.default_rng(3).normal(0.2, 1.0, (1, 50))
    assert seeds_prompts_bootstrap(d, rng_for(0, "k"), 500) == paired_bootstrap(d[0], np.zeros(50), rng_for(0, "k"), 500)


def test_an_effect_one_seed_made_is_not_significant_over_seeds() -> None:
    """Seeds that disagree (one lifts, one lowers) with steady prompts: the prompts-only bootstrap
    of the pooled answers calls it significant, the seeds-and-prompts bootstrap does not."""
    e = np.random.default_rng(5).normal(0, 0.05, 100)
    d = np.vstack([0.5 + e, -0.1 + e, 0.45 + e, -0.05 + e])
    *_, pooled_p = paired_bootstrap(d.ravel(), np.zeros(d.size), rng_for(0, "pooled"), 2000)
    mean, lo, hi, p = seeds_prompts_bootstrap(d, rng_for(0, "two-level"), 2000)
    assert pooled_p < 0.01
    assert p > 0.05 and lo < 0 < hi and mean == pytest.approx(d.mean())


def _report(url: str, correction: str | None = None):
    df, extras = load_results_with_extras(url)
    return experiment_report(df, extras, load_experiments(url)[0], load_loops(url), correction)


def _row(rep, kind: str, a: str, b: str, task: str, metric: str = "similarity.cosine", principle: str = "") -> dict:
    hits = [r for r in rep.comparisons if (r["kind"], r["a"], r["b"], r["task"], r["metric"], r["principle"])
            == (kind, a, b, task, metric, principle)]
    assert len(hits) == 1, [(r["kind"], r["a"], r["b"], r["task"], r["metric"]) for r in rep.comparisons]
    return hits[0]


@pytest.fixture(scope="module")
def cultures(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("cultures")
    return ES.culture_store(tmp / "results.sqlite", tmp / "exp")


@pytest.fixture(scope="module")
def ablation(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("ablation")
    return ES.ablation_store(tmp / "results.sqlite", tmp / "exp")


ZA, RO = "task=za_heldout", "task=ro_heldout"


def test_transfer_matrix_has_each_cultures_own_change_and_the_harm_to_the_other(cultures) -> None:
    rep = _report(cultures)
    t = rep.transfer
    assert t["rows"] == [ZA, RO] and t["cols"] == ["ro_heldout", "za_heldout"]
    cells = t["cells"]["similarity.cosine"]
    za_on_ro, za_on_za = cells[0]
    ro_on_ro, ro_on_za = cells[1]
    assert za_on_za["own"] and za_on_za["verdict"] == "improved" and za_on_za["delta"] == pytest.approx(0.15)
    assert za_on_ro["verdict"] == "no significant change" and za_on_ro["delta"] == pytest.approx(0.0, abs=1e-9)
    assert ro_on_ro["verdict"] == "improved" and ro_on_ro["delta"] == pytest.approx(0.2)
    assert ro_on_za["verdict"] == "regressed" and ro_on_za["delta"] == pytest.approx(-0.1)
    assert all(c["holds_in_seeds"] == "2/2" for row in cells for c in row)
    family = [r for r in rep.comparisons if r["family"] == "transfer: similarity.cosine"]
    assert len(family) == 4 and {r["method"] for r in family} == {"Holm"}
    np.testing.assert_allclose([r["p_corrected"] for r in family], holm([r["p"] for r in family]))


def test_per_principle_movement_and_seeds(cultures) -> None:
    rep = _report(cultures)
    pa = _row(rep, "principles", f"{ZA}: DPO", f"{ZA}: base", "za_heldout", principle="pa")
    pb = _row(rep, "principles", f"{ZA}: DPO", f"{ZA}: base", "za_heldout", principle="pb")
    assert pa["verdict"] == "improved" and pa["delta"] == pytest.approx(0.3) and pa["seeds"] == 2
    assert pb["verdict"] == "no significant change"
    assert [s["seed"] for s in pa["per_seed"]] == [0, 1] and pa["holds_in_seeds"] == "2/2"
    means = [m for m in rep.means if m["condition"] == ZA and m["task"] == "za_heldout"
             and m["metric"] == "similarity.cosine"][0]
    assert means["dpo"]["mean"] - means["base"]["mean"] == pytest.approx(0.15)
    assert means["seeds"] == 2


def test_behaviour_is_reported_beside_wording(cultures) -> None:
    rep = _report(cultures)
    readings = {(b["a"], b["b"], b["task"]): b["reading"] for b in rep.behaviour}
    assert readings[(f"{ZA}: DPO", f"{ZA}: base", "za_heldout")] == "wording and behaviour"
    assert readings[(f"{RO}: DPO", f"{RO}: base", "ro_heldout")] == "wording only"
    refusal = _row(rep, "variants", f"{ZA}: DPO", f"{ZA}: base", "za_heldout",
                   metric="refusal rate (prompts expecting a refusal)")
    assert refusal["verdict"] == "improved" and refusal["delta"] == 1.0
    over = _row(rep, "variants", f"{ZA}: DPO", f"{ZA}: base", "za_heldout",
                metric="over-refusal rate (prompts expecting an answer)")
    assert over["verdict"] == "no significant change"
    buf = io.StringIO()
    print_experiment_verdicts([rep], Console(file=buf, width=300))
    text = buf.getvalue()
    assert "wording only" in text and "corrected verdicts (Holm)" in text and "trained on task=ro_heldout" in text


def test_ablation_shows_what_removing_a_principle_does_and_gate_variants_get_their_reason(ablation) -> None:
    rep = _report(ablation)
    none, pa = "data.drop_principles=none", "data.drop_principles=pa"
    lost = _row(rep, "ablation", f"{pa}: DPO", f"{none}: DPO", "za_heldout", principle="pa")
    kept = _row(rep, "ablation", f"{pa}: DPO", f"{none}: DPO", "za_heldout", principle="pb")
    assert lost["verdict"] == "regressed" and lost["delta"] == pytest.approx(-0.3) and lost["dropped"] == ["pa"]
    assert kept["verdict"] == "no significant change"
    assert rep.stopped == [{"variant": "data.drop_principles=pb", "status": "gate", "reason": ES.GATE,
                            "gate": {"sft": {"kept": 3, "total": 40}}}]
    assert not rep.seed_axis and all(r["holds_in_seeds"] == "" for r in rep.comparisons)


def test_a_comparison_without_shared_scores_is_named_not_dropped(ablation) -> None:
    """A finished variant whose DPO has no score in the store: its comparisons are listed
    under "Not compared" with the reason, and the others still get verdicts."""
    from cai_bench.results.experiments import VariantRecord

    df, extras = load_results_with_extras(ablation)
    record = load_experiments(ablation)[0]
    loops = load_loops(ablation)
    ghost = ES.loop("ghost", "za_heldout", "sft_all", "dpo_never_scored", Path("/nowhere"))
    record.variants.append(VariantRecord("data.drop_principles=pc", {"data.drop_principles": ["pc"]},
                                         loop_id=ghost.loop_id, status="done"))
    rep = experiment_report(df, extras, record, [*loops, ghost])
    assert any(n.startswith("data.drop_principles=pc: DPO vs data.drop_principles=pc: base on za_heldout "
                            "similarity.cosine: no prompt") for n in rep.notes)
    assert _row(rep, "ablation", "data.drop_principles=pa: DPO", "data.drop_principles=none: DPO", "za_heldout",
                principle="pa")["verdict"] == "regressed"


def test_bh_is_an_option_named_in_the_rows(ablation) -> None:
    rep = _report(ablation, "bh")
    assert rep.method_name == "Benjamini-Hochberg" and {r["method"] for r in rep.comparisons} == {"Benjamini-Hochberg"}
    for family in {r["family"] for r in rep.comparisons}:
        part = [r for r in rep.comparisons if r["family"] == family]
        np.testing.assert_allclose([r["p_corrected"] for r in part], bh([r["p"] for r in part]))


def test_report_writes_the_experiment_files_and_regenerates_them_byte_for_byte(ablation, tmp_path) -> None:
    runs = []
    for k in range(2):
        out = tmp_path / f"o{k}"
        res = CliRunner().invoke(app, ["report", "--store", ablation, "--out", str(out), "--n-boot", "10"],
                                 env={"COLUMNS": "250"})
        assert res.exit_code == 0, res.output
        runs.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert runs[0] == runs[1]
    report = tmp_path / "o0" / "report"
    rows = list(csv.DictReader((report / "comparisons.csv").read_text().splitlines()))
    assert {"family", "metric", "a", "b", "delta", "lo", "hi", "p", "p_corrected", "method", "verdict"} <= set(rows[0])
    assert any(r["kind"] == "ablation" and r["principle"] == "pa" and r["verdict"] == "regressed" for r in rows)
    md = (report / "experiment.md").read_text()
    assert "Principle ablations: similarity.cosine" in md and "Holm" in md and "min_kept_fraction 0.5" in md
    assert "![data.drop_principles](plots/experiment_data.drop_principles-" in md
    assert "gate: sft kept 3/40" in md
    data = json.loads((report / "experiment.json").read_text())
    assert data["correction"] == "holm" and len(data["comparisons"]) == len(rows)
    html = (report / "index.html").read_text()
    assert 'id="experiment-1"' in html and "Principle ablations" in html
    samples = (report / "samples.html").read_text()
    assert "training data not found" in samples  # the variants' folders are not on this machine
    assert "uncorrected" in (report / "pipeline.md").read_text()
    res = CliRunner().invoke(app, ["report", "--store", ablation, "--out", str(tmp_path / "o2"), "--n-boot", "10",
                                   "--format", "csv", "--correction", "bh", "--no-show"])
    assert res.exit_code == 0, res.output
    assert {r["method"] for r in csv.DictReader((tmp_path / "o2" / "report" / "comparisons.csv").open())} \
        == {"Benjamini-Hochberg"}
    bad = CliRunner().invoke(app, ["report", "--store", ablation, "--out", str(tmp_path / "o3"), "--correction", "x"])
    assert bad.exit_code != 0 and "--correction" in bad.output


def _data_folder(root: Path, task: Path | None = None) -> Path:
    """A variant's pipeline folder as the data and task stages leave it (the task stage's
    files in `task` when given)."""
    task = task or root / "task"
    task.mkdir(parents=True)
    (root / "data" / "sft").mkdir(parents=True)
    prompts = [("How should a court treat a minister?", "rule_of_law", "By the same law as anyone else."),
               ("Write a poem about the sea.", "culture", "Waves fold silver into the sand."),
               ("May the police search a home without a warrant?", "privacy", "Only as the law allows.")]
    (task / "train_prompts.jsonl").write_text(
        "".join(json.dumps({"id": f"t{i}", "prompt": p, "principle_id": pr}) + "\n"
                for i, (p, pr, _) in enumerate(prompts)))
    (root / "data" / "sft" / "train.jsonl").write_text(
        "".join(json.dumps({"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": r}]}) + "\n"
                for p, _, r in prompts) + '{"messages": [')  # a partial line from a kill is skipped
    return root / "data"


def test_read_examples_and_nearest(tmp_path) -> None:
    examples = read_examples(_data_folder(tmp_path / "v"))
    assert examples[0] == ("How should a court treat a minister?", "rule_of_law", "By the same law as anyone else.")
    assert len(examples) == 3
    # an experiment's layout: the data in a shared stage folder, the task prompts behind the variant's task/ link
    exp = tmp_path / "exp"
    shared = _data_folder(exp / "stages", task=exp / "variants" / "train_seed=0" / "task")
    lp = ES.loop("train_seed=0", "za_heldout", "s", "d", exp)
    assert task_prompts(lp, shared) == exp / "variants" / "train_seed=0" / "task" / "train_prompts.jsonl"
    assert read_examples(shared, task_prompts(lp, shared))[0][1] == "rule_of_law"
    assert read_examples(shared)[0][1] == ""  # no prompts file beside it: no principle, still the example
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    c = np.array([[0.0, 1.0], [0.6, 0.8], [1.0, 0.0], [0.6, 0.8]])
    assert nearest(q, c, k=2) == [[(2, 1.0), (1, 0.6)], [(0, 1.0), (1, 0.8)]]  # ties by index


def test_training_links_say_when_the_files_are_not_here(cultures) -> None:
    loops = load_loops(cultures)
    df, extras = load_results_with_extras(cultures)
    links = training_links(df.drop_duplicates(["fingerprint", "task_id", "prompt_id"]), [("v", loops[0])],
                           embed=None)
    assert links.links == {} and "training data not found" in links.missing[0]


def test_training_links_without_an_embedder_say_so(tmp_path) -> None:
    """The reports package gets the embedder from its caller; without one nothing is linked, in words."""
    from cai_bench.reports.training_links import NO_EMBEDDER

    folder = _data_folder(tmp_path / "v")
    lp = ES.loop("v", "za_heldout", "s", "d", tmp_path)
    lp.provenance = {"sft": {"data": {"dir": str(folder)}}}
    import pandas as pd

    samples = pd.DataFrame(columns=["fingerprint", "task_id", "prompt_id", "prompt", "response"])
    links = training_links(samples, [("v", lp)], None)
    assert links.missing == [NO_EMBEDDER] and links.links == {}


@pytest.mark.slow
def test_training_links_find_the_training_prompt_behind_an_answer(tmp_path) -> None:
    """Real all-MiniLM: an answer about a minister and the courts links first to the
    rule-of-law training example, with its principle and revision."""
    import pandas as pd

    from cai_bench.results.loops import LoopRecord

    folder = _data_folder(tmp_path / "v")
    loop = LoopRecord(loop_id="l", title="t", fingerprints={"base": "b", "sft": "s", "dpo": "d"}, specs={},
                      eval_task="held", tasks=["held"], provenance={"sft": {"data": {"dir": str(folder)}}})
    samples = pd.DataFrame([{"fingerprint": "d", "task_id": "held", "prompt_id": "q1",
                             "prompt": "Is a minister above the courts?",
                             "response": "No minister is above the law; the courts judge them like anyone."}])
    from cai_bench.embeddings import embed

    links = training_links(samples, [("v", loop)], embed)
    (anchor, sim), *_ = links.links[("d", "held", "q1")]
    (examples,) = links.sets.values()
    first = next(e for e in examples if e.anchor == anchor)
    assert first.principle == "rule_of_law" and first.revision == "By the same law as anyone else." and sim > 0.3


def test_hostile_names_stay_text_in_markdown_and_the_terminal(ablation) -> None:
    from cai_bench.reports.markdown import render_experiment_markdown

    df, extras = load_results_with_extras(ablation)
    record = load_experiments(ablation)[0]
    record.title = "t|itle\x1b[2J"
    record.variants[2].reason = "gate | failed\nsecond line \x1b[31m"
    rep = experiment_report(df, extras, record, load_loops(ablation))
    md = render_experiment_markdown([rep], [{}], {})
    assert "\x1b" not in md
    row = [ln for ln in md.splitlines() if ln.startswith("| data.drop_principles=pb ")]
    assert len(row) == 1 and len(row[0].replace("\\|", "").strip("|").split("|")) == 4
    buf = io.StringIO()
    print_experiment_verdicts([rep], Console(file=buf, width=300, force_terminal=False))
    assert "\x1b" not in buf.getvalue() and "\\x1b" in buf.getvalue()
