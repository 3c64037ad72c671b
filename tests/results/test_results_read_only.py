"""Commands that only read a store (`report`, `report --list-configs`, `status`) open it
read-only: they work on a read-only file and folder, change no byte or mtime of the
store and leave no `-wal`/`-shm` beside it. An older schema on a read-only store is
refused in one line naming the migration; a broken store (unreachable server, corrupt,
empty, a folder) is one line, exit 2, for `status` as for `report`."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.harness.leases import Leases, WorkUnit
from cai_bench.harness.scorers import MetricSpec, ScoreRow
from cai_bench.results import Store, Unit

ROOT = Path(__file__).resolve().parents[2]
V1_DDL = Path(__file__).with_name("schema_v1_sqlite.sql")
SIM = [MetricSpec("cosine", "higher", -1.0, 1.0)]


def build(path: Path, *, dead_running_run: bool = False) -> str:
    """A small store: two checkpoints answered and scored on one task, a scoring work unit;
    optionally a run left `running` by a process that is gone."""
    url = path if "://" in str(path) else f"sqlite:///{path}"
    store = Store(str(url))
    run = store.start_run("{}", 0, "test", heartbeat=False)
    pids = tuple(f"p{i}" for i in range(4))
    store.upsert_task(task_id="t_local", constitution_id="c", culture="ZA", n_prompts=4, metadata={},
                      prompts=[{"prompt_id": p, "prompt": f"q {p}", "principle_id": "x"} for p in pids])
    store.upsert_scorer_metrics("similarity", "h_sim", SIM, {})
    for n, fp in enumerate(("fp_base", "fp_tuned")):
        store.upsert_checkpoint(run, fingerprint=fp, spec=f"/ckpt/{fp}", kind="hf", label=fp[3:], metadata={})
        unit = Unit(fp, "t_local", "g", pids)
        store.insert_generations(run, unit, [(p, f"answer {p} {fp}", 0.1) for p in pids])
        pending, _ = store.pending_scores([unit], "similarity", "h_sim", 1)
        store.insert_scores(run, "similarity", "h_sim",
                            [(x.generation_id, ScoreRow.ok("k", "cosine", 0.2 + 0.1 * n + 0.01 * i))
                             for i, x in enumerate(pending)])
    Leases(store.engine, owner="w1").register([WorkUnit.make("score", 0, ["1", "2"], scorer_id="similarity",
                                                             scorer_hash="h_sim")])
    store.finish_run(run, "finished")
    if dead_running_run:
        with store.engine.begin() as conn:
            from sqlalchemy import text

            conn.execute(text("insert into runs (run_id, started_at, status, config_json, scorers_json, pid, host,"
                              " heartbeat_at) values ('dead', '2020-01-01T00:00:00+00:00', 'running', '{}', '[]',"
                              " 999999999, 'nohost', '2020-01-01T00:00:00+00:00')"))
    store.close()
    return str(url)


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {f.name: (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns) for f in folder.iterdir()}


@pytest.fixture()
def ro_store() -> Iterator[Path]:
    """A store in a world-readable folder (another user can read it), file and folder
    made read-only after it is written."""
    folder = Path(tempfile.mkdtemp(prefix="cai-ro-"))
    folder.chmod(0o755)
    db = folder / "results.sqlite"
    build(db)
    db.chmod(0o444)
    folder.chmod(0o555)
    yield db
    folder.chmod(0o755)
    shutil.rmtree(folder)


def _as_other_user() -> list[str]:
    """A prefix that runs a command as `nobody` (no write access at all, whatever the
    bits say) when we are root; empty otherwise (the bits already stop us)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root without setpriv: cannot drop write access")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _cli(args: list[str], prefix: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "CAI_BENCH_HOME": str(home)}
    return subprocess.run([*prefix, sys.executable, "-m", "cai_bench", *args], env=env, capture_output=True,
                          text=True, timeout=300, cwd=str(home))


@pytest.mark.parametrize("who", ["owner", "other user"])
def test_read_commands_work_on_a_read_only_store_and_write_nothing(ro_store: Path, who: str) -> None:
    """As the owner (root ignores the bits: the store must open `immutable`) and as a user
    who cannot write at all (before the fix: "attempt to write a readonly database")."""
    prefix = _as_other_user() if who == "other user" else []
    scratch = Path(tempfile.mkdtemp(prefix="cai-ro-out-"))
    scratch.chmod(0o777)
    try:
        before = _snapshot(ro_store.parent)
        out = scratch / "elsewhere"
        runs = {
            "report": _cli(["report", "--store", str(ro_store), "--out", str(out), "--baseline", "base",
                            "--n-boot", "50"], prefix, scratch),
            "list": _cli(["report", "--store", str(ro_store), "--out", str(out), "--list-configs"], prefix, scratch),
            "status": _cli(["status", "--store", str(ro_store)], prefix, scratch),
        }
        for name, r in runs.items():
            assert r.returncode == 0, (name, r.stderr[-2000:])
            assert "Traceback" not in r.stderr and "readonly" not in r.stderr
        assert (out / "report" / "index.html").is_file()
        assert "Leaderboard" in runs["report"].stdout and "tuned" in runs["report"].stdout
        assert "similarity h_sim: 8 scores" in runs["list"].stdout
        assert "0/2" in runs["status"].stdout and "similarity" in runs["status"].stdout
        assert _snapshot(ro_store.parent) == before  # same files (no -wal/-shm), same bytes, same mtimes
    finally:
        shutil.rmtree(scratch)


def _on_read_only_mount(folder: Path) -> list[str]:
    """A prefix that runs a command with `folder` bind-mounted read-only (a private mount
    namespace): the file system refuses every write, whatever the bits say."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script + ' && exit 1', str(folder), "touch",
                            str(folder / "probe")], capture_output=True, text=True)
    if probe.returncode == 0 or (folder / "probe").exists() or "Read-only" not in probe.stderr:
        pytest.skip(f"cannot make a read-only mount here: {probe.stderr.strip()[:200]}")
    return ["unshare", "-m", "sh", "-c", script, str(folder)]


def test_read_commands_work_on_a_read_only_mount(tmp_path: Path) -> None:
    """The store's file and folder keep their write bits; the mount is read-only."""
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "results.sqlite"
    build(db)
    prefix = _on_read_only_mount(folder)
    before = _snapshot(folder)
    for args in (["report", "--store", str(db), "--out", str(tmp_path / "o"), "--no-show"],
                 ["report", "--store", str(db), "--list-configs"], ["status", "--store", str(db)]):
        r = _cli(args, prefix, tmp_path)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr[-2000:])
    assert (tmp_path / "o" / "report" / "index.html").is_file()
    assert _snapshot(folder) == before


def test_reading_does_not_reap_or_migrate(tmp_path: Path) -> None:
    """A reader leaves a dead run `running` in the store (the next writer marks it), shows it
    as `interrupted`, and writes nothing."""
    db = tmp_path / "results.sqlite"
    build(db, dead_running_run=True)
    before = _snapshot(tmp_path)
    res = CliRunner().invoke(app, ["report", "--store", str(db), "--list-configs"])
    assert res.exit_code == 0, res.output
    assert "dead: interrupted" in res.output
    assert _snapshot(tmp_path)["results.sqlite"] == before["results.sqlite"]  # SQLite's -wal/-shm may appear
    con = sqlite3.connect(db)
    assert con.execute("select status from runs where run_id = 'dead'").fetchone() == ("running",)
    con.close()
    Store(f"sqlite:///{db}").close()  # a writer's open marks it
    con = sqlite3.connect(db)
    assert con.execute("select status from runs where run_id = 'dead'").fetchone() == ("interrupted",)
    con.close()


def test_older_schema_on_a_read_only_store_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    con = sqlite3.connect(db)
    con.executescript(V1_DDL.read_text())
    con.close()
    db.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        before = _snapshot(tmp_path)
        for args in (["report", "--out", str(tmp_path / "o")], ["status"]):
            res = CliRunner().invoke(app, [*args, "--store", str(db)])
            assert res.exit_code == 2, res.output
            line = res.output.strip()
            assert "\n" not in line and "schema version 1" in line and "report --migrate" in line, line
        assert _snapshot(tmp_path) == before  # not migrated, no backup copy made
    finally:
        tmp_path.chmod(0o755)
        db.chmod(0o644)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["unreachable postgresql", "corrupt", "empty", "folder"])
@pytest.mark.parametrize("command", ["status", "report", "report --migrate"])
def test_broken_store_is_one_line_exit_2(tmp_path: Path, kind: str, command: str) -> None:
    """Before: `status` printed a ~155-line traceback (exit 1) for the first two, as did
    `report --migrate`; `report` a traceback for a 0-byte file."""
    if command == "report --migrate" and kind == "empty":
        pytest.skip("an empty file has nothing to migrate (exit 0, says so)")
    if kind == "unreachable postgresql":
        url, expect = f"postgresql://u:pw-SECRET@127.0.0.1:{_closed_port()}/cai", "refused"
    elif kind == "corrupt":
        (tmp_path / "bad.sqlite").write_bytes(b"not a database at all " * 300)
        url, expect = str(tmp_path / "bad.sqlite"), "file is not a database"
    elif kind == "empty":
        (tmp_path / "empty.sqlite").write_bytes(b"")
        url, expect = str(tmp_path / "empty.sqlite"), "empty file (0 bytes)"
    else:
        (tmp_path / "folder").mkdir()
        url, expect = str(tmp_path / "folder"), "is a folder" if command != "report --migrate" else "unable to open"
    args = [*command.split(), "--store", url] + (["--out", str(tmp_path / "o")] if command == "report" else [])
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    text = res.output.strip()
    assert text.startswith("error:") and "\n" not in text and expect in text, text
    assert "SECRET" not in text and not (tmp_path / "o").exists()
    if kind == "empty":
        assert (tmp_path / "empty.sqlite").stat().st_size == 0 and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("n_boot", ["0", "-5", "9"])
def test_report_refuses_too_few_bootstrap_resamples(tmp_path: Path, n_boot: str) -> None:
    """Before: `--n-boot 0 --baseline X` raised IndexError; `-5` printed "Bootstrap: -5 resamples"."""
    db = tmp_path / "results.sqlite"
    build(db)
    res = CliRunner().invoke(app, ["report", "--store", str(db), "--out", str(tmp_path / "o"), "--baseline", "base",
                                   "--n-boot", n_boot])
    assert res.exit_code == 2 and "--n-boot" in res.output and "greater than or equal to 10" in res.output
    assert not isinstance(res.exception, IndexError) and not (tmp_path / "o").exists()


def test_postgresql_store_is_read_in_read_only_sessions(pg_url: str, tmp_path: Path) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import InternalError

    from cai_bench.results.engine import open_engine

    build(pg_url, dead_running_run=True)
    engine = open_engine(pg_url, create=False, read_only=True)
    try:
        with pytest.raises(InternalError, match="read-only transaction"):
            with engine.begin() as conn:
                conn.execute(text("update runs set status = 'x'"))
    finally:
        engine.dispose()
    for args in (["report", "--out", str(tmp_path / "o"), "--n-boot", "50"], ["status"],
                 ["report", "--list-configs"]):
        res = CliRunner().invoke(app, [*args, "--store", pg_url])
        assert res.exit_code == 0, res.output
    assert "dead: interrupted" in res.output  # shown as the next writer will mark it
    from sqlalchemy import create_engine

    from cai_bench.results.schema import _with_driver

    engine = create_engine(_with_driver(pg_url))
    with engine.connect() as conn:
        assert conn.execute(text("select status from runs where run_id = 'dead'")).scalar() == "running"
    engine.dispose()
    assert (tmp_path / "o" / "report" / "index.html").is_file()


@pytest.mark.parametrize("who", ["owner", "other user"])
def test_read_only_store_with_an_unmerged_log_shows_its_committed_rows(who: str) -> None:
    """A writer killed before its log was merged leaves rows only in `-wal`; `immutable`
    would hide them and `mode=ro` cannot open it in a read-only folder: read from a copy."""
    prefix = _as_other_user() if who == "other user" else []
    work, folder = Path(tempfile.mkdtemp(prefix="cai-wal-")), Path(tempfile.mkdtemp(prefix="cai-ro-"))
    try:
        build(work / "results.sqlite")
        con = sqlite3.connect(work / "results.sqlite")
        con.execute("PRAGMA wal_autocheckpoint=0")
        con.execute("insert into runs (run_id, started_at, status, config_json, scorers_json) "
                    "values ('late', '2030-01-01T00:00:00+00:00', 'finished', '{}', '[]')")
        con.commit()
        for name in ("results.sqlite", "results.sqlite-wal"):  # as a kill -9 leaves them
            shutil.copyfile(work / name, folder / name)
        con.close()
        assert (folder / "results.sqlite-wal").stat().st_size > 0
        for f in folder.iterdir():
            f.chmod(0o444)
        folder.chmod(0o555)
        before = _snapshot(folder)
        res = _cli(["report", "--store", str(folder / "results.sqlite"), "--list-configs"], prefix, work)
        assert res.returncode == 0, res.stderr[-2000:]
        assert "late: finished" in res.stdout
        assert _snapshot(folder) == before
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)
        shutil.rmtree(work)
