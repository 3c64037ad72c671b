"""Content identity in the store, comparable leaderboards, the schema version
(a store written by the previous schema is migrated, with a backup), ids never
reused, and runs killed with SIGKILL shown as interrupted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from cai_bench.errors import UserError
from cai_bench.harness.scorers import MetricSpec, ScoreRow
from cai_bench.results import Store, Unit, load_results, load_results_with_extras
from cai_bench.results import schema as S

V1_DDL = Path(__file__).with_name("schema_v1_sqlite.sql")
ROOT = Path(__file__).resolve().parents[2]


def _url(tmp_path: Path) -> str:
    return S.normalize_url(None, str(tmp_path))


def _task(store: Store, version: dict[str, tuple[str, str, str]]) -> None:
    """Register task t with prompts {id: (text, input_hash, content_hash)}."""
    store.upsert_task(task_id="t", constitution_id="c", culture="ZA", n_prompts=len(version), metadata={},
                      prompts=[{"prompt_id": pid, "prompt": text, "principle_id": "p1", "reference": "ref",
                                "category": None, "expect": "refuse", "input_hash": ih, "content_hash": ch}
                               for pid, (text, ih, ch) in version.items()])


def _unit(fp: str, gh: str, version: dict[str, tuple[str, str, str]]) -> Unit:
    ids = tuple(version)
    return Unit(fp, "t", gh, ids, tuple(version[p][1] for p in ids), tuple(version[p][2] for p in ids))


def _score_all(store: Store, run_id: str, unit: Unit, scorer_hash: str, value: float = 0.5) -> int:
    store.upsert_scorer_metrics("sim", scorer_hash, [MetricSpec("similarity", "higher", -1, 1)], {})
    pending, _ = store.pending_scores([unit], "sim", scorer_hash, 1)
    store.insert_scores(run_id, "sim", scorer_hash, [(p.generation_id, ScoreRow.ok("k", "similarity", value))
                                                     for p in pending],
                        {p.generation_id: p.content_hash for p in pending})
    return len(pending)


def test_edited_prompt_is_answered_and_scored_anew_and_old_rows_are_not_reported(tmp_path: Path) -> None:
    store = Store(_url(tmp_path))
    run = store.start_run("{}", 0, "test")
    store.upsert_checkpoint(run, fingerprint="fpA", spec="a", kind="hf", label="A", metadata={})
    v1 = {"a": ("old text", "iA1", "cA1"), "b": ("same", "iB", "cB1")}
    _task(store, v1)
    u1 = _unit("fpA", "g1", v1)
    store.insert_generations(run, u1, [("a", "old answer", 0.1), ("b", "answer b", 0.1)])
    assert _score_all(store, run, u1, "h1") == 2

    # prompt a's text changes (new input and content hash); b's reference changes (new content hash only)
    v2 = {"a": ("new text", "iA2", "cA2"), "b": ("same", "iB", "cB2")}
    _task(store, v2)
    u2 = _unit("fpA", "g1", v2)
    assert store.missing_prompts(u2) == ["a"]  # b's stored answer is still valid: same input
    store.insert_generations(run, u2, [("a", "new answer", 0.1)])
    pending, reused = store.pending_scores([u2], "sim", "h1", 1)
    assert sorted(p.prompt_id for p in pending) == ["a", "b"] and reused == 0  # b is scored anew
    assert {p.prompt_id: p.prompt for p in pending}["a"] == "new text"
    _score_all(store, run, u2, "h1", 0.9)

    df = load_results(_url(tmp_path))
    assert sorted(df["response"]) == ["answer b", "new answer"]  # the old answer stays stored, not reported
    assert set(df["value"]) == {0.9} and set(df["prompt"]) == {"new text", "same"}
    with store.engine.connect() as conn:
        assert conn.execute(select(S.generations.c.response)).scalars().all() == [
            "old answer", "answer b", "new answer"]
        assert len(conn.execute(select(S.scores.c.score_id)).all()) == 4
    store.close()


def test_mixed_configs_are_never_mixed_in_one_leaderboard(tmp_path: Path) -> None:
    """A answered under g1 and g2, B only under g1: the board uses g1 for both.
    A scored by h1, B only by h2: one scorer config is used, the other checkpoint is missing."""
    store = Store(_url(tmp_path))
    run = store.start_run("{}", 0, "test")
    v = {"a": ("q", "i", "c")}
    _task(store, v)
    for fp in ("fpA", "fpB"):
        store.upsert_checkpoint(run, fingerprint=fp, spec=fp, kind="hf", label=fp[-1], metadata={})
    store.upsert_gen_config("g1", {"max_new_tokens": 64})
    store.upsert_gen_config("g2", {"max_new_tokens": 512})
    for fp, gh in (("fpA", "g1"), ("fpB", "g1"), ("fpA", "g2")):  # A's g2 answers are the newest
        store.insert_generations(run, _unit(fp, gh, v), [("a", f"{fp}-{gh}", 0.1)])
    _score_all(store, run, _unit("fpA", "g1", v), "h1", 0.1)
    _score_all(store, run, _unit("fpA", "g2", v), "h1", 0.2)
    _score_all(store, run, _unit("fpB", "g1", v), "h2", 0.3)  # B judged by another scorer config
    _score_all(store, run, _unit("fpB", "g1", v), "h1", 0.4)
    df, extras = load_results_with_extras(_url(tmp_path))
    assert set(df["gen_hash"]) == {"g1"} and set(df["scorer_hash"]) == {"h1"}
    assert sorted(zip(df["label"], df["value"])) == [("A", 0.1), ("B", 0.4)]
    gen_cfg = [c for c in extras.configs if c["kind"] == "generation"]
    assert gen_cfg == [{"kind": "generation", "name": "t", "hash": "g1", "settings": {"max_new_tokens": 64},
                        "covered": 2, "of": 2, "unit": "checkpoints", "engine": "hf"}]
    assert [(x["checkpoint"], x["what"], x["hash"], x["missing"]) for x in extras.left_out] == [
        ("A", "generation config", "g2", False), ("B", "scorer sim", "h2", False)]

    # B loses its h1 scores: h1 covers A only, h2 covers B only; the newest-scored config wins and the
    # other checkpoint shows as missing, never as a number from another config
    with store.engine.begin() as conn:
        conn.execute(S.scores.delete().where(S.scores.c.value == 0.4))
    df, extras = load_results_with_extras(_url(tmp_path))
    assert df["scorer_hash"].nunique() == 1 and df["label"].nunique() == 1
    missing = [x for x in extras.left_out if x["missing"]]
    assert len(missing) == 1 and missing[0]["what"] == "scorer sim" and "missing here" in missing[0]["reason"]
    store.close()


def _v1_store(path: Path) -> None:
    con = sqlite3.connect(path)
    con.executescript(V1_DDL.read_text())
    con.executescript("""
        insert into runs values ('r1', '2025-01-01T00:00:00+00:00', '2025-01-01T00:01:00+00:00', 'finished', 0,
                                 '{}', '[]', '0.1');
        insert into runs values ('r2', '2025-01-02T00:00:00+00:00', NULL, 'running', 0, '{}', '[]', '0.1');
        insert into checkpoints values ('fp1', 'spec', 'hf', 'old-model', '{}');
        insert into tasks values ('t', 'c', 'ZA', 2, '{}');
        insert into prompts values ('t', 'a', 'q a', 'p1', 'ref', NULL, 'refuse');
        insert into prompts values ('t', 'b', 'q b', 'p1', NULL, NULL, 'refuse');
        insert into generations values (1, 'fp1', 't', 'a', 'g', 'answer a', 0.1, 'r1', '2025-01-01T00:00:01+00:00');
        insert into generations values (2, 'fp1', 't', 'b', 'g', 'answer b', 0.1, 'r1', '2025-01-01T00:00:02+00:00');
        insert into scorer_metrics values ('sim', 'h', 'similarity', 'higher', -1, 1, '{}');
        insert into scores values (1, 1, 'sim', 'h', 'similarity', 0.5, 'ok', NULL, NULL, 'r1',
                                   '2025-01-01T00:00:03+00:00');
        insert into scores values (2, 2, 'sim', 'h', 'similarity', NULL, 'na', NULL, NULL, 'r1',
                                   '2025-01-01T00:00:04+00:00');
    """)
    con.commit()
    con.close()


def test_old_store_is_migrated_with_a_backup(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    _v1_store(db)
    before = load_results(f"sqlite:///{db}")  # any open migrates
    backup = tmp_path / "results.sqlite.v1-backup"
    assert backup.is_file()
    old = sqlite3.connect(backup)
    assert old.execute("select count(*) from generations").fetchone() == (2,)
    assert old.execute("select count(*) from sqlite_master where name = 'meta'").fetchone() == (0,)
    old.close()
    con = sqlite3.connect(db)
    assert con.execute("select value from meta where key = 'schema_version'").fetchone() == (str(S.SCHEMA_VERSION),)
    assert con.execute("select distinct input_hash from generations").fetchall() == [(S.LEGACY,)]
    assert con.execute("select status from runs order by run_id").fetchall() == [("finished",), ("interrupted",)]
    con.close()
    # the old results are still reported until a run registers the task's prompts anew
    assert sorted(before["response"]) == ["answer a", "answer b"]
    assert load_results(f"sqlite:///{db}").equals(before)  # a second open changes nothing
    assert not (tmp_path / "results.sqlite.v1-backup.2").exists()

    store = Store(f"sqlite:///{db}")  # and the migrated store takes new work under content identity
    store.start_run("{}", 0, "test", heartbeat=False)
    v = {"a": ("q a", "ia", "ca"), "b": ("q b", "ib", "cb")}
    _task(store, v)
    assert store.missing_prompts(_unit("fp1", "g", v)) == ["a", "b"]  # legacy answers are not reused
    store.close()


def test_edited_prompt_does_not_inherit_an_old_error_row(tmp_path: Path) -> None:
    """A generation error is keyed by the prompt version (input hash), like a
    generation: after an edit the new version has no error, the old one's stays
    a record of the old version; a success clears only its own version's row."""
    store = Store(_url(tmp_path))
    run = store.start_run("{}", 0, "test", heartbeat=False)
    store.upsert_checkpoint(run, fingerprint="fp", spec="openai:m", kind="openai", label="m", metadata={})
    v1 = {"a": ("old text", "iA1", "cA1"), "b": ("same", "iB", "cB")}
    _task(store, v1)
    u1 = _unit("fp", "g", v1)
    assert store.record_generation_errors(run, u1, [("a", "HTTP 400: context too long"), ("b", "HTTP 503")]) == 2
    assert store.generation_errors(u1) == {"a": "HTTP 400: context too long", "b": "HTTP 503"}
    v2 = {"a": ("new, shorter text", "iA2", "cA2"), "b": ("same", "iB", "cB")}
    _task(store, v2)
    u2 = _unit("fp", "g", v2)
    assert store.generation_errors(u2) == {"b": "HTTP 503"}  # the edited prompt starts clean
    assert store.missing_prompts(u2) == ["a", "b"]
    store.insert_generations(run, u2, [("a", "answer", 0.1), ("b", "answer b", 0.1)])
    assert store.generation_errors(u2) == {}
    assert store.generation_errors(u1) == {"a": "HTTP 400: context too long"}  # the old version's record
    assert store.record_generation_errors(run, u2, [("a", "HTTP 500")]) == 1  # same key again: updated, not doubled
    assert store.record_generation_errors(run, u2, [("a", "HTTP 502")]) == 1
    with store.engine.connect() as conn:
        e = S.generation_errors.c
        assert conn.execute(select(e.input_hash, e.error).where(e.prompt_id == "a").order_by(e.input_hash)).all() \
            == [("iA1", "HTTP 400: context too long"), ("iA2", "HTTP 502")]
    store.close()


def _v2_rows(conn) -> None:  # noqa: ANN001
    from sqlalchemy import text

    for stmt in (
        "insert into meta values ('schema_version', '2')",
        "insert into runs (run_id, started_at, status, config_json, scorers_json) "
        "values ('r1', '2025-01-01T00:00:00+00:00', 'finished', '{}', '[]')",
        "insert into generation_errors (fingerprint, task_id, prompt_id, gen_hash, error, run_id, created_at) "
        "values ('fp', 't', 'a', 'g', 'HTTP 503', 'r1', '2025-01-01T00:00:01+00:00')",
    ):
        conn.execute(text(stmt))


def test_version_2_store_is_migrated_to_keep_the_input_hash_of_errors(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    con = sqlite3.connect(db)
    con.executescript(Path(__file__).with_name("schema_v2_sqlite.sql").read_text())
    con.close()
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        _v2_rows(conn)
    engine.dispose()
    store = Store(f"sqlite:///{db}")  # any open migrates, after a backup
    assert (tmp_path / "results.sqlite.v2-backup").is_file()
    with store.engine.connect() as conn:
        e = S.generation_errors.c
        assert conn.execute(select(e.error_id, e.prompt_id, e.input_hash, e.error)).all() == [
            (1, "a", S.LEGACY, "HTTP 503")]
        assert conn.execute(select(S.meta.c.value)).scalar() == str(S.SCHEMA_VERSION)
    run = store.start_run("{}", 0, "test", heartbeat=False)
    v = {"a": ("q a", "ia", "ca")}
    _task(store, v)
    assert store.generation_errors(_unit("fp", "g", v)) == {}  # a legacy error is not this version's
    assert store.record_generation_errors(run, _unit("fp", "g", v), [("a", "HTTP 500")]) == 1
    with store.engine.connect() as conn:
        ids = conn.execute(select(S.generation_errors.c.error_id).order_by(S.generation_errors.c.error_id)).all()
    assert ids == [(1,), (2,)]
    store.close()
    Store(f"sqlite:///{db}").close()  # a second open changes nothing
    assert not (tmp_path / "results.sqlite.v2-backup.2").exists()


def test_version_2_postgresql_store_is_migrated_on_request(pg_url: str) -> None:
    from sqlalchemy import create_engine, text
    from typer.testing import CliRunner

    from cai_bench.cli import app

    engine = create_engine(S._with_driver(pg_url))
    with engine.begin() as conn:
        for stmt in Path(__file__).with_name("schema_v2_postgresql.sql").read_text().split(";"):
            if stmt.strip():
                conn.execute(text(stmt))
        _v2_rows(conn)
    engine.dispose()
    with pytest.raises(UserError) as err:
        Store(pg_url)
    assert "schema version 2" in err.value.message and "report --migrate" in err.value.message
    res = CliRunner().invoke(app, ["report", "--migrate", "--store", pg_url])
    assert res.exit_code == 0 and f"migrated from schema version 2 to {S.SCHEMA_VERSION}" in res.output, res.output
    store = Store(pg_url)
    run = store.start_run("{}", 0, "test", heartbeat=False)
    v = {"a": ("q a", "ia", "ca")}
    _task(store, v)
    assert store.generation_errors(_unit("fp", "g", v)) == {}
    assert store.record_generation_errors(run, _unit("fp", "g", v), [("a", "HTTP 500")]) == 1
    assert store.record_generation_errors(run, _unit("fp", "g", v), [("a", "HTTP 502")]) == 1
    with store.engine.connect() as conn:
        e = S.generation_errors.c
        assert conn.execute(select(e.input_hash, e.error).order_by(e.error_id)).all() == [
            (S.LEGACY, "HTTP 503"), ("ia", "HTTP 502")]
    store.close()


def test_newer_store_is_refused_in_one_line(tmp_path: Path) -> None:
    url = _url(tmp_path)
    Store(url).close()
    con = sqlite3.connect(tmp_path / "results.sqlite")
    con.execute("update meta set value = '99' where key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(UserError) as err:
        Store(url)
    assert "schema version 99" in err.value.message and "\n" not in err.value.message


def test_ids_are_never_reused_after_deletions(tmp_path: Path) -> None:
    store = Store(_url(tmp_path))
    run = store.start_run("{}", 0, "test", heartbeat=False)
    v = {p: (p, "i" + p, "c" + p) for p in "abc"}
    _task(store, v)
    store.upsert_checkpoint(run, fingerprint="fp", spec="s", kind="hf", label="x", metadata={})
    unit = _unit("fp", "g", v)
    store.insert_generations(run, unit, [(p, "r", 0.1) for p in "abc"])
    _score_all(store, run, unit, "h")
    with store.engine.connect() as conn:
        top_gen = conn.execute(select(S.generations.c.generation_id).order_by(S.generations.c.generation_id.desc())
                               ).scalars().first()
        top_score = conn.execute(select(S.scores.c.score_id).order_by(S.scores.c.score_id.desc())).scalars().first()
    assert store.delete_generations(unit) == 3  # --force: the newest ids are gone
    store.insert_generations(run, unit, [(p, "r2", 0.1) for p in "abc"])
    _score_all(store, run, unit, "h")
    with store.engine.connect() as conn:
        assert min(conn.execute(select(S.generations.c.generation_id)).scalars()) > top_gen
        assert min(conn.execute(select(S.scores.c.score_id)).scalars()) > top_score
    store.close()


_HOLDER = textwrap.dedent("""
    import sys, time
    from cai_bench.results import Store
    store = Store(sys.argv[1])
    run_id = store.start_run("{}", 0, "test")
    print(run_id, flush=True)
    time.sleep(600)
""")


def test_run_killed_with_sigkill_shows_as_interrupted(tmp_path: Path) -> None:
    url = _url(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdout=subprocess.PIPE, text=True, env=env)
    try:
        run_id = proc.stdout.readline().strip()
        assert run_id
        store = Store(url)  # the run's process is alive: still running
        with store.engine.connect() as conn:
            assert conn.execute(select(S.runs.c.status)).scalar() == "running"
        store.close()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    store = Store(url)  # the next open sees a dead pid on this host
    with store.engine.connect() as conn:
        row = conn.execute(select(S.runs.c.run_id, S.runs.c.status, S.runs.c.finished_at)).one()
    assert row.run_id == run_id and row.status == "interrupted" and row.finished_at
    store.close()


def test_stale_heartbeat_from_another_host_is_interrupted(tmp_path: Path) -> None:
    from cai_bench.results.liveness import reap_interrupted

    store = Store(_url(tmp_path))
    old = store.start_run("{}", 0, "test", heartbeat=False)
    fresh = store.start_run("{}", 0, "test", heartbeat=False)
    with store.engine.begin() as conn:
        conn.execute(update(S.runs).values(host="elsewhere", pid=1))
        conn.execute(update(S.runs).where(S.runs.c.run_id == old).values(heartbeat_at="2020-01-01T00:00:00+00:00"))
    assert reap_interrupted(store.engine) == [old]
    with store.engine.connect() as conn:
        status = dict(conn.execute(select(S.runs.c.run_id, S.runs.c.status)).all())
    assert status == {old: "interrupted", fresh: "running"}
    store.close()


def test_heartbeat_keeps_a_live_run_fresh(tmp_path: Path) -> None:
    from cai_bench.results.liveness import Heartbeat

    store = Store(_url(tmp_path))
    run = store.start_run("{}", 0, "test", heartbeat=False)
    with store.engine.begin() as conn:
        conn.execute(update(S.runs).values(heartbeat_at="2020-01-01T00:00:00+00:00"))
    beat = Heartbeat(store.engine, run, every=0.05).start()
    time.sleep(0.5)
    beat.stop()
    with store.engine.connect() as conn:
        assert conn.execute(select(S.runs.c.heartbeat_at)).scalar() > "2025"
    store.close()


def test_old_postgresql_store_is_refused_then_migrated_on_request(pg_url: str) -> None:
    """PostgreSQL (several workers may share it) is never migrated implicitly: the
    open fails in one line naming the command, which then migrates in place."""
    from sqlalchemy import create_engine, text
    from typer.testing import CliRunner

    from cai_bench.cli import app

    engine = create_engine(S._with_driver(pg_url))
    with engine.begin() as conn:
        for stmt in V1_DDL.with_name("schema_v1_postgresql.sql").read_text().split(";"):
            if stmt.strip():
                conn.execute(text(stmt))
        conn.execute(text("""
            insert into runs values ('r1', '2025-01-01T00:00:00+00:00', NULL, 'running', 0, '{}', '[]', '0.1');
            insert into checkpoints values ('fp1', 'spec', 'hf', 'old-model', '{}');
            insert into tasks values ('t', 'c', 'ZA', 1, '{}');
            insert into prompts values ('t', 'a', 'q a', 'p1', 'ref', NULL, 'refuse');
            insert into generations (fingerprint, task_id, prompt_id, gen_hash, response, created_at)
                values ('fp1', 't', 'a', 'g', 'answer a', '2025-01-01T00:00:01+00:00');
            insert into scorer_metrics values ('sim', 'h', 'similarity', 'higher', -1, 1, '{}');
            insert into scores (generation_id, scorer_id, scorer_hash, metric, value, status, created_at)
                values (1, 'sim', 'h', 'similarity', 0.5, 'ok', '2025-01-01T00:00:03+00:00');
        """))
    engine.dispose()
    with pytest.raises(UserError) as err:
        Store(pg_url)
    assert "schema version 1" in err.value.message and "report --migrate" in err.value.message
    res = CliRunner().invoke(app, ["report", "--migrate", "--store", pg_url])
    assert res.exit_code == 0 and f"migrated from schema version 1 to {S.SCHEMA_VERSION}" in res.output, res.output
    assert sorted(load_results(pg_url)["response"]) == ["answer a"]
    store = Store(pg_url)
    run = store.start_run("{}", 0, "test", heartbeat=False)
    v = {"a": ("q a edited", "ia", "ca")}
    _task(store, v)
    store.upsert_checkpoint(run, fingerprint="fp1", spec="spec", kind="hf", label="old-model", metadata={})
    assert store.insert_generations(run, _unit("fp1", "g", v), [("a", "new answer", 0.1)]) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(S.generations.c.generation_id, S.generations.c.input_hash)
                            .order_by(S.generations.c.generation_id)).all() == [(1, S.LEGACY), (2, "ia")]
        assert conn.execute(select(S.runs.c.status).where(S.runs.c.run_id == "r1")).scalar() == "interrupted"
    store.close()
