"""Work leases on a real PostgreSQL server (throwaway cluster) and on SQLite:
concurrent claimers never get the same unit, a dead holder's unit is taken over
(at once on the same host, after the lease on another), a lost lease cannot be
completed, `--force`/error retries re-open done units."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cai_bench.results import make_engine
from cai_bench.results import schema as S
from cai_bench.harness.leases import Leases, generation_units, progress, score_units


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return S.normalize_url(str(tmp_path / "r.sqlite"))
    return request.getfixturevalue("pg_url")


def _units(n: int = 12):
    return generation_units("fp", "task", "g", [f"p{i}" for i in range(n * 2)], 2)


def test_unit_keys_are_content_and_cut_from_the_whole_list() -> None:
    a = generation_units("fp", "t", "g", ["a", "b", "c"], 2)
    assert [u.items for u in a] == [("a", "b"), ("c",)] and a == generation_units("fp", "t", "g", ["a", "b", "c"], 2)
    assert a[0].key != generation_units("fp2", "t", "g", ["a", "b", "c"], 2)[0].key
    s = score_units("sim", "h", [5, 3, 9], 2)  # cut in the order given: the store's content order
    assert [u.items for u in s] == [("5", "3"), ("9",)]


def test_concurrent_claimers_never_share_a_unit(url: str) -> None:
    engine = make_engine(url)
    units = _units(12)
    Leases(engine).register(units)
    got: dict[str, list[str]] = {}

    def worker(name: str) -> None:
        lz = Leases(engine, owner=f"elsewhere:{name}:x")
        mine = got.setdefault(name, [])
        while (u := lz.claim(units)) is not None:
            mine.append(u.key)
            assert lz.complete(u, worked=True)

    threads = [threading.Thread(target=worker, args=(str(i),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = [k for v in got.values() for k in v]
    assert sorted(claimed) == sorted(u.key for u in units)  # each once, none lost
    assert Leases(engine).all_done(units)
    (p,) = progress(engine)
    assert (p.units_done, p.items_done, p.items_total) == (12, 24, 24)
    engine.dispose()


def test_expired_lease_is_taken_over_and_the_late_holder_cannot_complete(url: str) -> None:
    engine = make_engine(url)
    units = _units(1)
    slow = Leases(engine, owner="otherhost:1:aa", ttl=1.5)
    slow.register(units)
    u = slow.claim(units)
    other = Leases(engine, owner="otherhost:2:bb", ttl=30)
    assert other.claim(units) is None  # held, not expired
    assert slow.renew(u)
    time.sleep(1.7)
    taken = other.claim(units)
    assert taken is not None and taken.key == u.key
    assert not slow.renew(u) and not slow.complete(u, worked=True)  # the lease is gone
    assert other.complete(taken, worked=True)
    assert other.claim(units) is None and other.all_done(units)
    engine.dispose()


def test_heartbeat_keeps_a_slow_unit(url: str) -> None:
    engine = make_engine(url)
    units = _units(1)
    lz = Leases(engine, owner="otherhost:1:aa", ttl=1.2)
    lz.register(units)
    u = lz.claim(units)
    with lz.holding(u):
        time.sleep(2.0)  # longer than the ttl: renewed meanwhile
        assert Leases(engine, owner="otherhost:2:bb").claim(units) is None
    assert lz.complete(u, worked=True)
    engine.dispose()


def test_done_units_reopen_when_registered_again(url: str) -> None:
    engine = make_engine(url)
    units = _units(2)
    lz = Leases(engine)
    lz.register(units)
    while (u := lz.claim(units)) is not None:
        lz.complete(u, worked=True)
    assert lz.all_done(units)
    lz.register(units[:1])  # e.g. its responses were deleted by --force
    assert not lz.all_done(units)
    assert lz.claim(units) == units[0]
    engine.dispose()


def test_sigkilled_holder_on_this_host_is_taken_over_at_once(url: str, tmp_path: Path) -> None:
    script = tmp_path / "hold.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from cai_bench.results import make_engine
        from cai_bench.harness.leases import Leases, generation_units
        units = generation_units("fp", "task", "g", ["a", "b"], 1)
        lz = Leases(make_engine({url!r}), ttl=3600)
        lz.register(units)
        u = lz.claim(units)
        print(u.key, flush=True)
        time.sleep(600)
    """))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        held = proc.stdout.readline().strip()
        assert held
        units = generation_units("fp", "task", "g", ["a", "b"], 1)
        engine = make_engine(url)
        lz = Leases(engine, ttl=3600)
        first = lz.claim(units)
        assert first is not None and first.key != held  # the live holder keeps its unit
        assert lz.claim(units) is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        taken = lz.claim(units)  # the holder's pid is gone: no need to wait an hour
        assert taken is not None and taken.key == held
        engine.dispose()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
