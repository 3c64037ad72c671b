"""Runs that died without saying so. A run writes its pid and host when it
starts and refreshes `heartbeat_at` from a background thread while it lives; the
next time anyone opens the store, a `running` run whose process is gone (same
host) or whose heartbeat is older than `STALE_AFTER` (any host) becomes
`interrupted`, so a kill -9 never leaves a run "running" forever."""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, select, update

from cai_bench.results import schema as S

HEARTBEAT_EVERY = 30.0  # seconds
STALE_AFTER = timedelta(minutes=10)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def this_host() -> str:
    return socket.gethostname()[:255]


def pid_alive(pid: int) -> bool:
    """True if a process with `pid` exists on this machine (zombies count as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:  # a killed child not yet reaped by its parent is a zombie: dead for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def _parse(ts: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(ts) if ts else None
    except ValueError:
        return None


def dead_runs(running: list, *, stale_after: timedelta = STALE_AFTER) -> list[str]:
    """Ids among `running` rows (run_id, pid, host, heartbeat_at, started_at) whose process
    is gone: what a writer marks `interrupted`, and a read-only reader shows as such."""
    host, moment = this_host(), datetime.now(timezone.utc)
    dead = []
    for run_id, pid, run_host, beat, started in running:
        last = _parse(beat) or _parse(started)
        if run_host == host and pid is not None and not pid_alive(int(pid)):
            dead.append(run_id)
        elif last is not None and moment - last > stale_after:
            dead.append(run_id)
    return dead


def reap_interrupted(engine: Engine, *, stale_after: timedelta = STALE_AFTER) -> list[str]:
    """Mark dead `running` runs as `interrupted`; returns their ids."""
    r = S.runs.c
    with engine.connect() as conn:
        running = conn.execute(select(r.run_id, r.pid, r.host, r.heartbeat_at, r.started_at)
                               .where(r.status == "running")).all()
    dead = dead_runs(running, stale_after=stale_after)
    if dead:
        with engine.begin() as conn:
            conn.execute(update(S.runs).where(r.run_id.in_(dead), r.status == "running")
                         .values(status="interrupted", finished_at=now()))
    return dead


class Heartbeat:
    """Refreshes a run's `heartbeat_at` every `every` seconds until stopped."""

    def __init__(self, engine: Engine, run_id: str, every: float = HEARTBEAT_EVERY) -> None:
        self.engine, self.run_id, self.every = engine, run_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(S.runs).where(S.runs.c.run_id == self.run_id).values(heartbeat_at=now()))
            except Exception:  # noqa: BLE001 - a busy store skips one beat; the next one retries
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def free_interrupted_statements(exc: BaseException) -> None:
    """Let go of what an interrupted store call left locked.

    A signal that lands while SQLite steps a statement (a claim's `UPDATE ... RETURNING`)
    leaves that statement un-reset in a cursor that the traceback's finished frames
    still hold. SQLAlchemy closes the connection, but SQLite keeps a connection with a
    live statement open (a "zombie") and with it the write lock, so the run's
    `interrupted` status, written next, would wait out the busy timeout and fail with
    "database is locked". Clearing those frames finalizes the statement."""
    import gc
    import traceback

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)  # frames still running are skipped
        exc = exc.__context__
    gc.collect()
