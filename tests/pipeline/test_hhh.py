"""hhh_alignment: the CAI paper's HHH items, loaded, exported to lm-eval and scored by log-likelihood."""

from __future__ import annotations

import json

import pytest
import yaml

from cai_bench.errors import UserError
from cai_bench.tasks import hhh


def test_items_parse(hhh_sample):
    items = hhh.load_hhh(hhh_sample)
    assert {it.correct for it in items} == {" (A)", " (B)"}
    assert all(it.context.endswith("Assistant:") and it.answer_correct != it.answer_incorrect for it in items)


def test_sample_and_seeded_limit(hhh_sample):
    items = hhh.load_hhh(hhh_sample)
    assert len(items) == 8 and items[0].id == "hhh-000"
    a = [it.id for it in hhh.load_hhh(hhh_sample, limit=3, seed=1)]
    assert a == [it.id for it in hhh.load_hhh(hhh_sample, limit=3, seed=1)] and len(a) == 3


def test_path_resolution(hhh_sample, tmp_path, monkeypatch, home):
    monkeypatch.setenv(hhh.ENV_PATH, str(hhh_sample))
    assert hhh.hhh_path() == hhh_sample
    monkeypatch.delenv(hhh.ENV_PATH)
    monkeypatch.setenv(hhh.SHARED_ENV, str(tmp_path / "no-shared-data"))  # CI has ../shared/data beside the clone
    with pytest.raises(UserError, match="was not found. Fix: run `HF_HUB_OFFLINE=0 cai-bench data fetch hhh`.*"
                                        "CAI_BENCH_HHH_PATH"):
        hhh.hhh_path()  # never a download: the one line names the command (HF_HUB_OFFLINE=1 in tests)
    with pytest.raises(UserError, match="no such file"):
        hhh.hhh_path(tmp_path / "missing.jsonl")


def test_bad_line_names_file_line_field(tmp_path, hhh_sample):
    bad = tmp_path / "bad.jsonl"
    row = json.loads(hhh_sample.read_text().splitlines()[0])
    del row["incorrects"]
    bad.write_text(hhh_sample.read_text().splitlines()[1] + "\n" + json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl:2: incorrects: missing"):
        hhh.parse_hhh(bad)


def test_export_is_an_lm_eval_multiple_choice_task(hhh_sample, tmp_path):
    from lm_eval.tasks import TaskManager

    names = hhh.export_hhh_lm_eval(hhh.load_hhh(hhh_sample), tmp_path)
    cfg = yaml.safe_load((tmp_path / "hhh_alignment.yaml").read_text())
    assert cfg["output_type"] == "multiple_choice" and names[hhh.TASK_ID] == "hhh_alignment"
    tm = TaskManager(include_path=str(tmp_path), include_defaults=False)
    assert {"hhh_alignment", "hhh_alignment_response"} <= set(tm.all_tasks)
    task = tm.load_task_or_group(["hhh_alignment"])["hhh_alignment"]
    doc = next(iter(task.test_docs()))
    assert task.doc_to_choice(doc) == [" (B)", " (A)"] and task.doc_to_target(doc) == 0


def test_loglikelihood_scoring_on_a_tiny_model(hhh_sample, tiny_model):
    from cai_bench.harness.hhh import build_lm, evaluate_hhh
    from cai_bench.models import resolve_checkpoint

    items = hhh.load_hhh(hhh_sample, limit=3)
    lm = build_lm(resolve_checkpoint(str(tiny_model)), batch_size=4)
    rows = evaluate_hhh(lm, items, batch_size=4)
    assert len(rows) == 6
    for r in rows:
        ll_right_wins = r["ll_correct"] > r["ll_incorrect"]
        if r["view"] == hhh.TASK_ID:  # letter view: plain acc, so the sign of the difference decides
            assert r["correct"] == float(ll_right_wins)
        assert r["correct"] in (0.0, 1.0)
