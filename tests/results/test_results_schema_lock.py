"""ALTER-TABLE upgrades of older stores run under the schema lock: two processes
opening a store that lacks scorer_metrics' composite/role columns at the same
moment both succeed and the columns are added once (real PostgreSQL server:
the test holds the advisory lock until both processes wait on it, then lets
them race; SQLite: two processes started together)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from cai_bench.results import schema as S

REPO = Path(__file__).resolve().parents[2]
OPEN = ("import sys; from cai_bench.results import make_engine; "
        "make_engine(sys.argv[1]).dispose(); print('opened')")


def _old_store(url: str) -> None:
    """A current store made old: scorer_metrics without composite/role, one judge verdict row."""
    from cai_bench.results import make_engine

    make_engine(url).dispose()
    engine = create_engine(S._with_driver(url))
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE scorer_metrics DROP COLUMN composite"))
        conn.execute(text("ALTER TABLE scorer_metrics DROP COLUMN role"))
        conn.execute(text("INSERT INTO scorer_metrics (scorer_id, scorer_hash, metric, direction, config_json) "
                          "VALUES ('judge', 'h1', 'refused', 'lower', '{}')"))
    engine.dispose()


def _spawn(url: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", OPEN, url], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _check_upgraded(url: str, procs: list[subprocess.Popen]) -> None:
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        assert "opened" in out
    engine = create_engine(S._with_driver(url))
    try:
        cols = [c["name"] for c in inspect(engine).get_columns("scorer_metrics")]
        assert cols.count("composite") == 1 and cols.count("role") == 1
        with engine.connect() as conn:
            row = conn.execute(text("SELECT composite, role FROM scorer_metrics WHERE metric = 'refused'")).one()
        assert tuple(row) == (None, None)  # kept; harness.declarations fills it before a report
    finally:
        engine.dispose()


def test_two_processes_upgrade_an_old_postgresql_store_at_once(pg_url: str) -> None:
    _old_store(pg_url)
    holder = create_engine(S._with_driver(pg_url))
    conn = holder.connect()
    trans = conn.begin()
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": S._SCHEMA_LOCK})  # both must queue behind us
    procs = [_spawn(pg_url), _spawn(pg_url)]
    try:
        deadline = time.monotonic() + 240
        waiting = 0
        while time.monotonic() < deadline:
            with holder.connect() as probe:
                waiting = probe.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                             "AND NOT granted")).scalar()
            if waiting == 2 or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.2)
        assert waiting == 2, [p.communicate()[1][-1500:] for p in procs if p.poll() is not None]
    finally:
        trans.rollback()  # release: both go at once, the lock lets one ALTER and the other find it done
        conn.close()
    _check_upgraded(pg_url, procs)
    holder.dispose()


def test_two_processes_upgrade_an_old_sqlite_store_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    _old_store(url)
    _check_upgraded(url, [_spawn(url), _spawn(url)])
