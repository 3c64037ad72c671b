"""Loading the store and the statistics behind the leaderboards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cai_bench.errors import UserError
from cai_bench.results import Store, load_results_with_extras
from cai_bench.reports import COLUMNS, leaderboard, load_results
from cai_bench.reports import statistics as st
from cai_bench.reports.refusal import refusal_rates


def test_load_results_latest_config_only(module_store):
    df = load_results(module_store)
    assert list(df.columns) == COLUMNS
    assert set(df["gen_hash"]) == {"g_new"}
    assert "OLD RESPONSE" not in set(df["response"])
    assert set(df["culture"]) == {"ZA", "RO", "xstest"}
    assert set(df["status"]) == {"ok", "na", "unscored", "error"}
    assert df.loc[df["status"] != "ok", "value"].isna().all()
    assert set(df["label"]) == {"base", "tuned"}
    # principle and metric metadata came along
    assert set(df.loc[df["task_id"] == "cai_romania", "principle_id"]) == {"family", "faith"}
    mod = df[df["scorer_id"] == "moderation"]
    assert set(mod["direction"]) == {"lower"} and mod["lo"].isna().all()
    # the metric declarations came along: the refusal verdict stays out of the composite
    refused = df[df["metric"] == "refused"]
    assert set(refused["role"]) == {"refusal"} and not refused["in_composite"].any()
    assert df.loc[df["metric"] != "refused", "in_composite"].all() and df.loc[df["metric"] != "refused", "role"].isna().all()


def test_load_results_empty_and_missing(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    Store(url).close()
    df = load_results(url)
    assert df.empty and list(df.columns) == COLUMNS
    with pytest.raises(UserError, match="does not exist"):
        load_results(f"sqlite:///{tmp_path / 'nope.sqlite'}")


def test_bootstrap_ci_seeded_and_sane():
    x = np.random.default_rng(1).normal(5, 1, 200)
    a = st.bootstrap_ci(x, st.rng_for(0, "k"), 500)
    b = st.bootstrap_ci(x, st.rng_for(0, "k"), 500)
    assert a == b
    mean, lo, hi = a
    assert lo < mean < hi and hi - lo < 0.5
    assert np.isnan(st.bootstrap_ci(np.array([]), st.rng_for(0), 10)[0])


def test_paired_bootstrap_detects_shift():
    rng = np.random.default_rng(2)
    base = rng.normal(0, 1, 100)
    d, lo, hi, p = st.paired_bootstrap(base + 0.5 + rng.normal(0, 0.1, 100), base, st.rng_for(0, "x"), 1000)
    assert 0.4 < d < 0.6 and lo > 0 and p < 0.01
    d, lo, hi, p = st.paired_bootstrap(base + rng.normal(0, 1, 100), base, st.rng_for(0, "y"), 1000)
    assert p > 0.05 or abs(d) > 0.2
    assert st.paired_bootstrap(base, base, st.rng_for(0), 100)[3] == 1.0


def test_paired_bootstrap_p_is_honest_for_few_pairs():
    assert st.paired_bootstrap(np.array([0.9]), np.array([0.1]), st.rng_for(0), 1000)[3] == 1.0  # one pair
    # three pairs all improved: a bootstrap alone would say p = 0; a sign-flip test cannot go below 1/4
    p3 = st.paired_bootstrap(np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.3]), st.rng_for(0), 1000)[3]
    assert p3 == 0.25
    assert st.paired_bootstrap(np.full(4, 0.6), np.full(4, 0.5), st.rng_for(0), 1000)[3] == 0.125
    rng = np.random.default_rng(3)
    big = st.paired_bootstrap(rng.normal(5, 1, 200), rng.normal(0, 1, 200), st.rng_for(0), 999)[3]
    assert 0 < big <= 2 / 1000  # never exactly 0: add-one smoothed


def test_normalization_uses_declared_range_and_direction():
    df = pd.DataFrame({
        "scorer_id": ["a", "a", "b", "b"], "metric": ["m"] * 4, "value": [0.0, 1.0, 2.0, 4.0],
        "status": ["ok"] * 4, "direction": ["higher", "higher", "lower", "lower"],
        "lo": [-1.0, -1.0, np.nan, np.nan], "hi": [1.0, 1.0, np.nan, np.nan],
    })
    out = st.add_normalized(df)
    assert list(out["norm"]) == [0.5, 1.0, 1.0, 0.0]  # a: declared -1..1; b: data 2..4, flipped


def test_leaderboard_shape_and_ranks(module_store):
    df = load_results(module_store)
    board = leaderboard(df, "culture", seed=0, n_boot=200)
    assert list(board.columns[:8]) == ["group", "label", "fingerprint", "n", "coverage", "composite", "rank", "rank_p"]
    assert len(board) == 6  # 3 groups x 2 checkpoints
    for _, part in board.groupby("group"):
        assert part["composite"].is_monotonic_decreasing  # listed best first
        first, second = part.to_dict("records")
        assert first["rank"] == 1 and pd.isna(first["rank_p"])
        # the second gets rank 2 only when the paired test separates them (6 prompts rarely do)
        assert second["rank"] == (2 if second["rank_p"] < 0.05 else 1)
    assert (board["coverage"] < 1).all() and (board["n"] == 6).all()
    for key in ("similarity.cosine", "judge.adherence", "moderation.max_score"):
        assert (board[f"{key}.lo"] <= board[key]).all() and (board[key] <= board[f"{key}.hi"]).all()
    assert leaderboard(df, "culture", seed=0, n_boot=200).equals(board)
    by_task = leaderboard(df, "task", seed=0, n_boot=50)
    assert set(by_task["group"]) == {"cai_south_africa", "cai_romania", "xstest"}


def test_refusal_rates_say_which_rule(module_store):
    df, extras = load_results_with_extras(module_store)
    assert extras.task_analyses == {"xstest": ("refusal",)}  # declared by the task, not guessed from its id
    rates = refusal_rates(df, extras.task_analyses)
    assert set(rates["subset"]) == {"safe", "unsafe"}
    assert (rates["by_verdict"] + rates["by_rule"] == rates["n"]).all()
    assert (rates["by_rule"] > 0).all()  # prompts without a judge verdict fell back to the string rule
    # p0 and p3 start with "I'm sorry": p0 is unsafe, p3 safe
    assert set(rates["refusal_rate"].round(3)) == {0.333}


def test_principle_breakdown_and_weakest(module_store):
    df = load_results(module_store)
    pb = st.principle_breakdown(df)
    assert set(pb["principle_id"]) == {"ubuntu", "dignity", "family", "faith"}
    weak = st.weakest_principles(pb, 1)
    assert len(weak) == 4  # 2 cultures with principles x 2 checkpoints


def test_groups_without_composite_are_unranked(module_store):
    df = load_results(module_store)
    only_na = df[(df["culture"] == "xstest")].copy()
    only_na["value"] = np.nan
    only_na["status"] = "na"
    board = leaderboard(pd.concat([df[df["culture"] != "xstest"], only_na]), by="culture", n_boot=50)
    xs = board[board["group"] == "xstest"]
    assert xs["composite"].isna().all() and xs["rank"].isna().all()
    ranked = board[board["group"] != "xstest"]
    assert ranked["rank"].notna().all() and ranked.groupby("group")["rank"].min().eq(1).all()


def test_ranks_separate_only_what_the_data_separates():
    """Three checkpoints on 40 prompts: A clearly above B, B and C indistinguishable -> ranks 1, 2, 2;
    Holm's correction over the adjacent pairs."""
    import numpy as np

    from cai_bench.reports.statistics import holm

    base = np.clip(0.5 + np.random.default_rng(0).normal(0, 0.05, 40), 0, 1)
    wobble = np.where(np.arange(40) % 2, 0.01, -0.01)  # C differs from B by +-0.01, 0 on average
    rows = []
    for fp, values in (("A", base + 0.3), ("B", base), ("C", base + wobble)):
        for i, v in enumerate(values):
            rows.append({"culture": "ZA", "task_id": "t", "prompt_id": f"p{i}", "fingerprint": fp, "label": fp,
                         "scorer_id": "s", "metric": "m", "value": float(v), "status": "ok", "direction": "higher",
                         "lo": 0.0, "hi": 1.0, "in_composite": True, "role": None})
    board = leaderboard(pd.DataFrame(rows), "culture", seed=0, n_boot=400)
    assert board["label"].tolist()[0] == "A" and set(board["label"]) == {"A", "B", "C"}
    assert board["rank"].tolist() == [1, 2, 2] and board["rank_p"].iloc[1] < 0.05 <= board["rank_p"].iloc[2]
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
