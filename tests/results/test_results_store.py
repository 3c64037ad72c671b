"""Store writes: idempotent inserts per chunk, missing queries, --force deletes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from cai_bench.results import schema as S
from cai_bench.harness.scorers import MetricSpec, ScoreRow
from cai_bench.results import Store, Unit


def _store(tmp_path: Path) -> tuple[Store, str, Unit]:
    store = Store(S.normalize_url(None, str(tmp_path)))
    run_id = store.start_run("{}", 0, "test")
    store.upsert_checkpoint(run_id, fingerprint="fp1", spec="x", kind="hf", label="x", metadata={})
    store.upsert_task(task_id="t", constitution_id="c", culture="ZA", n_prompts=3, metadata={},
                      prompts=[{"prompt_id": p, "prompt": f"q{p}", "principle_id": None,
                                "reference": "ref" if p != "c" else None, "category": None, "expect": "refuse"}
                               for p in "abc"])
    return store, run_id, Unit("fp1", "t", "g1", ("a", "b", "c"))


def test_generations_exactly_once_and_missing(tmp_path: Path) -> None:
    store, run_id, unit = _store(tmp_path)
    assert store.missing_prompts(unit) == ["a", "b", "c"]
    assert store.insert_generations(run_id, unit, [("a", "ra", 0.1), ("b", "rb", 0.1)]) == 2
    assert store.insert_generations(run_id, unit, [("b", "other", 0.1)]) == 0  # already there: kept
    assert store.missing_prompts(unit) == ["c"]
    store.upsert_task(task_id="t", constitution_id="c", culture="ZA", n_prompts=3, metadata={}, prompts=[])
    other = Unit("fp1", "t", "g2", unit.prompt_ids)  # another generation config: nothing stored yet
    assert store.missing_prompts(other) == ["a", "b", "c"]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(S.generations)).scalar() == 2
        assert conn.execute(select(S.generations.c.response).where(
            S.generations.c.prompt_id == "b")).scalar() == "rb"


def test_scores_pending_force_and_run_row(tmp_path: Path) -> None:
    store, run_id, unit = _store(tmp_path)
    store.insert_generations(run_id, unit, [("a", "ra", 0.1), ("c", "rc", 0.1)])
    store.upsert_scorer_metrics("sim", "h1", [MetricSpec("m", "higher", 0, 1)], {"model": "x"})
    pending, reused = store.pending_scores([unit], "sim", "h1", 1)
    assert [p.prompt_id for p in pending] == ["a", "c"] and reused == 0
    assert pending[0].reference == "ref" and pending[1].reference is None and pending[0].constitution_id == "c"
    rows = [(pending[0].generation_id, ScoreRow.ok("k", "m", 0.5))]
    assert store.insert_scores(run_id, "sim", "h1", rows) == 1
    assert store.insert_scores(run_id, "sim", "h1", rows) == 0
    pending, reused = store.pending_scores([unit], "sim", "h1", 1)
    assert [p.prompt_id for p in pending] == ["c"] and reused == 1
    assert store.delete_scores([unit], "sim", "h1") == 1
    assert store.delete_generations(unit) == 2
    assert store.missing_prompts(unit) == ["a", "b", "c"]
    store.set_run_scorers(run_id, [{"id": "sim", "available": False, "reason": "r"}])
    store.finish_run(run_id, "finished")
    with store.engine.connect() as conn:
        row = conn.execute(select(S.runs.c.status, S.runs.c.scorers_json)).one()
    assert row.status == "finished" and '"reason": "r"' in row.scorers_json
    store.close()


def test_error_scores_are_retried_and_replaced(tmp_path: Path) -> None:
    store, run_id, unit = _store(tmp_path)
    store.insert_generations(run_id, unit, [("a", "ra", 0.1)])
    store.upsert_scorer_metrics("mod", "h1", [MetricSpec("flagged", "lower", 0, 1)], {})
    (gid,) = [p.generation_id for p in store.pending_scores([unit], "mod", "h1", 1)[0]]
    assert store.insert_scores(run_id, "mod", "h1", [(gid, ScoreRow.failed("k", "flagged", "HTTP 429"))]) == 1
    pending, reused = store.pending_scores([unit], "mod", "h1", 1)
    assert [p.generation_id for p in pending] == [gid] and reused == 0  # an error is not done
    assert store.insert_scores(run_id, "mod", "h1", [(gid, ScoreRow.ok("k", "flagged", 0.0))]) == 1
    assert store.pending_scores([unit], "mod", "h1", 1) == ([], 1)
    assert store.insert_scores(run_id, "mod", "h1", [(gid, ScoreRow.failed("k", "flagged", "late"))]) == 0
    with store.engine.connect() as conn:
        rows = conn.execute(select(S.scores.c.status, S.scores.c.value, S.scores.c.error)).all()
    assert [tuple(r) for r in rows] == [("ok", 0.0, None)]  # one row, the retry's, never overwritten by an error
    store.close()


def test_scoring_order_is_content_order_whatever_order_answers_were_stored(tmp_path: Path) -> None:
    """A resumed or multi-worker run stores answers in another order; scoring batches (and so a
    batched scorer's last float bits) must not follow it."""
    answers = {"fp1": [("a", "ra1", 0.1), ("b", "rb1", 0.1), ("c", "rc1", 0.1)],
               "fp2": [("a", "ra2", 0.1), ("b", "rb2", 0.1), ("c", "rc2", 0.1)]}
    seen = []
    for n, order in enumerate((["fp1", "fp2"], ["fp2", "fp1"])):
        store, run_id, _ = _store(tmp_path / str(n))
        store.upsert_checkpoint(run_id, fingerprint="fp2", spec="y", kind="hf", label="y", metadata={})
        units = {fp: Unit(fp, "t", "g1", ("a", "b", "c")) for fp in ("fp1", "fp2")}
        for fp in order:
            rows = answers[fp] if n == 0 else answers[fp][::-1]
            store.insert_generations(run_id, units[fp], rows)
        ids = store.scope_generation_ids([units["fp1"], units["fp2"]])
        pending = store.pending_scores_among(ids[::-1], "sim", "h", 1)
        assert [p.generation_id for p in pending] == ids[::-1]  # the order asked for, not id order
        seen.append([(p.prompt_id, p.response) for p in pending[::-1]])
    assert seen[0] == seen[1] == [("a", "ra1"), ("a", "ra2"), ("b", "rb1"), ("b", "rb2"), ("c", "rc1"), ("c", "rc2")]
