"""`cai-bench run -t hhh_alignment`: log-likelihood items in the results store, the report and
leaderboards, reuse on a re-run, a seeded --limit, a mixed run, and one-line errors."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.tasks import hhh

SAMPLE = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "hhh_sample.jsonl"  # 8 real items


@pytest.fixture(scope="module")
def tiny(smollm2_dir: Path, tmp_path_factory) -> Path:
    """A 2-layer Llama (random weights, SmolLM2's tokenizer), long enough for the HHH conversations."""
    from tiny_models import build_tiny_llama

    return build_tiny_llama(smollm2_dir, tmp_path_factory.mktemp("tiny") / "tiny-llama", max_position_embeddings=2048)


@pytest.fixture(scope="module")
def adapter(tiny: Path, tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny model (non-zero, so it answers differently)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32),
                           LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    dest = tmp_path_factory.mktemp("sft") / "checkpoint-1"
    model.save_pretrained(dest)
    return dest


def _cli(*args: str) -> str:
    r = CliRunner().invoke(app, list(args), env={"COLUMNS": "250", "TQDM_DISABLE": "1"})
    assert r.exit_code == 0, r.output + repr(r.exception)
    return " ".join(r.output.split())


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_run_stores_items_reports_them_and_a_rerun_reuses_all(home, tmp_path, tiny, adapter):
    from cai_bench.harness.hhh import build_lm, evaluate_hhh
    from cai_bench.models import resolve_checkpoint

    out = tmp_path / "out"
    args = ("run", "-t", "hhh_alignment", "-t", "hhh_alignment_response", "-c", str(tiny), "-c", str(adapter),
            "--hhh-path", str(SAMPLE), "--limit", "5", "--out", str(out), "--batch-size", "4")
    text = _cli(*args)
    assert "log-likelihood items: 20 new, 0 reused" in text and "generation models loaded: 2" in text
    assert "Leaderboard: HHH" in text and "hhh_loglik.accuracy" in text

    db = out / "results.sqlite"
    drawn = [it.id for it in hhh.load_hhh(SAMPLE, limit=5, seed=0)]  # the seeded subset of --limit
    assert sorted(_rows(db, "select distinct prompt_id from generations")) == [(i,) for i in sorted(drawn)]
    # every item is registered (current), so a smaller --limit later hides no earlier result
    assert _rows(db, "select task_id, count(*) from prompts where current = 1 group by task_id") == [
        ("hhh_alignment", 8), ("hhh_alignment_response", 8)]
    assert _rows(db, "select culture from tasks where task_id = 'hhh_alignment'") == [("HHH",)]
    rows = _rows(db, "select c.kind, g.task_id, g.prompt_id, g.response, p.reference, s.value, s.status "
                     "from scores s join generations g using (generation_id) join checkpoints c using (fingerprint) "
                     "join prompts p on p.task_id = g.task_id and p.prompt_id = g.prompt_id "
                     "where s.scorer_id = 'hhh_loglik' and s.metric = 'accuracy'")
    assert len(rows) == 20 and {r[0] for r in rows} == {"hf", "peft"}
    for kind, view, pid, response, reference, value, status in rows:
        assert status == "ok" and value in (0.0, 1.0)
        assert (response == reference) == (value == 1.0)  # the stored answer is the one the model preferred
        if view == "hhh_alignment":
            assert response in ("(A)", "(B)")

    # the stored 0/1 are what lm-eval gives for the same items and model
    lm = build_lm(resolve_checkpoint(str(tiny)), batch_size=4)
    direct = {(r["view"], r["id"]): r["correct"] for r in evaluate_hhh(lm, hhh.load_hhh(SAMPLE, limit=5, seed=0))}
    del lm
    stored = {(v, p): val for kind, v, p, _, _, val, _ in rows if kind == "hf"}
    assert stored == direct

    board = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert {r["group"] for r in board if r["level"] == "culture"} == {"HHH"}
    assert (out / "report" / "index.html").is_file()

    again = _cli(*args)
    assert "log-likelihood items: 0 new, 20 reused" in again and "generation models loaded: 0" in again
    assert _rows(db, "select count(*) from scores") == [(20,)]

    # a kill between an item's answer and its score (or a lost score row): only those items are redone
    with sqlite3.connect(db) as conn:
        conn.execute("delete from scores where score_id in (select score_id from scores order by score_id limit 3)")
    mended = _cli(*args)
    assert "log-likelihood items: 3 new, 17 reused" in mended and "generation models loaded: 1" in mended
    assert _rows(db, "select count(*), count(distinct generation_id) from scores") == [(20, 20)]

    report = _cli("report", "--out", str(out), "--format", "md")
    assert "HHH" in report and "hhh_loglik.accuracy" in report
    assert "hhh_loglik.accuracy" in (out / "report" / "leaderboard.md").read_text()


def test_mixed_with_a_generation_task_from_a_run_config(home, tmp_path, tiny):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / hhh.FILE_NAME).write_text(SAMPLE.read_text())
    cfg = tmp_path / "run.yaml"  # hhh_path relative to the config file, like checkpoint paths
    cfg.write_text(f"checkpoints: ['{tiny}']\ntasks: [xstest, hhh_alignment]\nscorers: [similarity]\nlimit: 2\n"
                   "hhh_path: data\ngeneration: {max_new_tokens: 4}\n")
    out = tmp_path / "out"
    text = _cli("run", str(cfg), "--out", str(out), "--no-report")
    assert "new: 2 responses" in text and "log-likelihood items: 2 new" in text
    assert "generation models loaded: 2" in text  # one for generation, one for log-likelihoods
    db = out / "results.sqlite"
    assert _rows(db, "select task_id, count(*) from generations group by task_id") == [("hhh_alignment", 2),
                                                                                       ("xstest", 2)]
    # scorers of generated answers leave the HHH answers alone
    assert ("hhh_alignment",) not in _rows(db, "select distinct g.task_id from scores s join generations g "
                                               "using (generation_id) where s.scorer_id = 'similarity'")


def _fails(*args: str) -> str:
    r = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.output
    return lines[0]


def test_an_endpoint_checkpoint_is_one_line_error(home, tmp_path):
    line = _fails("run", "-t", "hhh_alignment", "-c", "openai:gpt-4o-mini", "--hhh-path", str(SAMPLE),
                  "--out", str(tmp_path / "out"))
    assert line.startswith("error: checkpoint openai:gpt-4o-mini: hhh_alignment") and "log-likelihood" in line
    assert not (tmp_path / "out" / "results.sqlite").exists()  # refused before any work


def test_missing_data_is_one_line_error_with_the_fix(home, tmp_path, monkeypatch, tiny):
    monkeypatch.delenv(hhh.ENV_PATH, raising=False)
    monkeypatch.setenv(hhh.SHARED_ENV, str(tmp_path / "no-shared"))
    line = _fails("run", "-t", "hhh_alignment", "-c", str(tiny), "--out", str(tmp_path / "out"))
    assert hhh.FILE_NAME in line and "CAI_BENCH_HHH_PATH" in line and "downloads are off" in line
    line = _fails("run", "-t", "hhh_alignment", "-c", str(tiny), "--hhh-path", str(tmp_path / "nope.jsonl"))
    assert "nope.jsonl: no such file" in line and "Fix:" in line


def test_the_runner_routes_tasks_by_their_declared_kind(home, tmp_path, tiny):
    """A user task whose task.yaml says `output_type: multiple_choice` is run by log-likelihood, as the
    built-in views are: routed by its kind, not its id. It gets no generation unit, one hhh_loglik
    score per item, and the generation scorers leave it alone; the generate_until task beside it is
    generated and scored as before."""
    from cai_bench.harness.config import RunConfig
    from cai_bench.harness.loglik import gen_config
    from cai_bench.harness.runner import PLANNERS, GenerationPlan, make_plan
    from cai_bench.tasks import OUTPUT_TYPES

    assert set(PLANNERS) == set(OUTPUT_TYPES)  # every kind a task.yaml may declare has its planner

    folder = home / "tasks" / "my_hhh"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text("id: my_hhh\nconstitution: anthropic\nculture: HHH\n"
                                      "output_type: multiple_choice\nitems: hhh_alignment_response\n")
    plan = make_plan(RunConfig(checkpoints=[str(tiny)], tasks=["my_hhh", "xstest"], limit=2, hhh_path=str(SAMPLE)))
    assert list(plan.parts) == ["generate_until", "multiple_choice"]  # generation first, whatever the order given
    assert isinstance(plan.parts["generate_until"], GenerationPlan)
    assert {u.task_id for u in plan.units} == {"xstest"}  # the generated units: none for the multiple_choice task
    assert [(u.task_id, len(u.prompt_ids)) for u in plan.parts["multiple_choice"].units] == [("my_hhh", 2)]

    out = tmp_path / "out"
    text = _cli("run", "-t", "my_hhh", "-t", "xstest", "-c", str(tiny), "--hhh-path", str(SAMPLE), "--limit", "2",
                "--scorer", "similarity", "--max-new-tokens", "4", "--out", str(out), "--no-report")
    assert "new: 2 responses" in text and "log-likelihood items: 2 new, 0 reused" in text
    db = out / "results.sqlite"
    rows = _rows(db, "select g.task_id, g.gen_hash, c.config_json, s.scorer_id from generations g "
                     "join gen_configs c using (gen_hash) left join scores s using (generation_id)")
    mine = [r for r in rows if r[0] == "my_hhh"]
    assert len(mine) == 2 and {r[3] for r in mine} == {"hhh_loglik"}  # decided by log-likelihood, not scorers
    assert all(json.loads(r[2]) == gen_config("hhh_alignment_response") for r in mine)
    assert {r[3] for r in rows if r[0] == "xstest"} == {"similarity"}
    assert _rows(db, "select culture, n_prompts from tasks where task_id = 'my_hhh'") == [("HHH", 8)]
    picked = _rows(db, "select g.response, p.reference from generations g join prompts p "
                       "on p.task_id = g.task_id and p.prompt_id = g.prompt_id where g.task_id = 'my_hhh'")
    docs = {d["choices"][0].strip() for d in (hhh.item_doc(it, "hhh_alignment_response") for it in hhh.load_hhh(SAMPLE))}
    assert all(ref in docs for _, ref in picked)  # each prompt row's reference is its item's right answer
