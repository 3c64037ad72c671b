"""Work leases: how several `cai-bench run` processes share one run's work
through the results store, without a scheduler of their own.

The work is cut into units (a chunk of one checkpoint x task's prompts; a
batch of one scorer's generations), each keyed by a hash of its content, so
every worker planning the same run computes the same keys. A worker claims
one unit at a time with a single `UPDATE ... WHERE key = (SELECT ... FOR UPDATE
SKIP LOCKED LIMIT 1) RETURNING` (PostgreSQL: concurrent claimers skip each
other's rows; SQLite: the statement takes the database's write lock, which
serializes claims of processes on one machine). A claim expires after
`ttl` seconds unless its holder renews it (a heartbeat thread does), so a
worker killed with `kill -9` loses its units to the others; on the same host
a dead holder's pid is noticed at once. The store's unique keys keep every
response and score stored once, and a claimed unit re-checks what is still
missing before doing anything, so a unit is never done twice.

The table lives beside the results tables and is created on first use; its
rows are bookkeeping only (the results never depend on it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, and_, case, func, or_, select, text, update

from cai_bench.hashing import digest

log = logging.getLogger("cai_bench.harness")

DEFAULT_TTL = 120.0  # seconds a claim lives without a heartbeat
metadata = MetaData()

work_units = Table(
    "work_units",
    metadata,
    Column("unit_key", String(64), primary_key=True),  # sha256 of kind + scope + items
    Column("kind", String(16), nullable=False),  # generate | score
    Column("fingerprint", String(64)),  # generate units
    Column("task_id", String(128)),
    Column("gen_hash", String(64)),
    Column("scorer_id", String(64)),  # score units
    Column("scorer_hash", String(64)),
    Column("seq", Integer, nullable=False),  # order of the unit in its plan
    Column("n_items", Integer, nullable=False),
    Column("items_json", Text, nullable=False),  # prompt ids or generation ids
    Column("status", String(16), nullable=False),  # pending | claimed | done
    Column("owner", String(200)),  # host:pid:token of the current or last holder
    Column("expires_at", Float),  # claim expiry, seconds since the epoch (the database's clock)
    Column("attempts", Integer, nullable=False, default=0),  # claims so far
    Column("done_by", String(200)),
    Column("done_at", Float),
    Column("worked", Integer, nullable=False, default=0),  # times a holder did real work on it
)

_LOCK = 0x6361695F6C656173  # advisory lock serializing CREATE TABLE on PostgreSQL


def host_id() -> str:
    """Where a worker runs, as far as its pids mean anything: the host name plus
    a hash of the kernel boot id and the pid namespace (two containers with one
    host name, or on one kernel, differ). `CAI_BENCH_WORKER_HOST` overrides it."""
    if os.environ.get("CAI_BENCH_WORKER_HOST"):
        return os.environ["CAI_BENCH_WORKER_HOST"].replace(":", "_")
    parts = []
    try:
        parts.append(open("/proc/sys/kernel/random/boot_id", encoding="ascii").read().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    tag = hashlib.sha256("|".join(parts).encode()).hexdigest()[:6] if parts else "0"
    return f"{socket.gethostname().replace(':', '_')}/{tag}"


def worker_id() -> str:
    """host:pid:token, unique per process; the host and pid let a worker on the
    same host tell a dead holder from a slow one."""
    return f"{host_id()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class WorkUnit:
    """One claimable piece of work."""

    key: str
    kind: str
    seq: int
    items: tuple[str, ...]
    fingerprint: str | None = None
    task_id: str | None = None
    gen_hash: str | None = None
    scorer_id: str | None = None
    scorer_hash: str | None = None

    @staticmethod
    def make(kind: str, seq: int, items: Sequence[str], **scope: str) -> "WorkUnit":
        key = digest([kind, sorted(scope.items()), list(items)], length=64, compact=False, ensure_ascii=True)
        return WorkUnit(key, kind, seq, tuple(items), **scope)


def generation_units(fingerprint: str, task_id: str, gen_hash: str, prompt_ids: Sequence[str],
                     chunk: int) -> list[WorkUnit]:
    """Chunks of the whole prompt list (never of what is missing now), so every
    worker cuts the same units whatever it finds already stored."""
    return [WorkUnit.make("generate", i // chunk, prompt_ids[i:i + chunk], fingerprint=fingerprint,
                          task_id=task_id, gen_hash=gen_hash) for i in range(0, len(prompt_ids), chunk)]


def plan_unit_work(store: Any, units: Sequence[Any], *, force: bool, chunk: int, progress: Any, verb: str,
                   label: Callable[[str], str], need: Callable[[Any], set[str]]) -> tuple[list[WorkUnit], dict, int]:
    """Per planned unit (checkpoint x task): wipe it under --force, find the items `need` says are
    missing, add its progress bar, and keep the chunks holding a missing item.
    Returns (work units, bars by (fingerprint, task), items reused)."""
    from cai_bench.console import safe

    todo: list[WorkUnit] = []
    bars: dict[tuple[str, str], Any] = {}
    reused = 0
    for u in units:
        if force:
            store.delete_generations(u)
        missing = need(u)
        reused += len(u.prompt_ids) - len(missing)
        bars[(u.fingerprint, u.task_id)] = progress.add_task(
            safe(f"{verb} {label(u.fingerprint)} x {u.task_id}"), total=len(u.prompt_ids),
            completed=len(u.prompt_ids) - len(missing))
        todo += [w for w in generation_units(u.fingerprint, u.task_id, u.gen_hash, u.prompt_ids, chunk)
                 if missing.intersection(w.items)]
    return todo, bars, reused


def score_units(scorer_id: str, scorer_hash: str, generation_ids: Sequence[int], batch: int) -> list[WorkUnit]:
    """Chunks of `generation_ids` in the order given (the store's content order)."""
    ids = [str(g) for g in generation_ids]
    return [WorkUnit.make("score", i // batch, ids[i:i + batch], scorer_id=scorer_id, scorer_hash=scorer_hash)
            for i in range(0, len(ids), batch)]


def ensure_table(engine) -> None:  # noqa: ANN001
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
            metadata.create_all(conn)
    else:
        metadata.create_all(engine)


def _now(conn) -> float:  # noqa: ANN001
    """The database's clock on PostgreSQL (workers on several machines agree on
    expiry without synchronized clocks); the local clock on SQLite (one machine)."""
    if conn.dialect.name == "postgresql":
        return float(conn.execute(text("SELECT extract(epoch from clock_timestamp())")).scalar())
    return time.time()


def _insert(conn):  # noqa: ANN001, ANN202
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(work_units)


class Leases:
    """Claims, renewals and completions of work units for one worker."""

    def __init__(self, engine, *, owner: str | None = None, ttl: float = DEFAULT_TTL) -> None:  # noqa: ANN001
        self.engine = engine
        self.owner = owner or worker_id()
        self.ttl = float(ttl)
        ensure_table(engine)

    # -- registration ----------------------------------------------------------
    def register(self, units: Sequence[WorkUnit]) -> None:
        """Make `units` (those with something missing in the store) claimable: new
        rows are pending; a `done` row is re-opened (its results were deleted by
        `--force`, or its scores were errors to retry); claimed rows are left alone.
        A re-open that races a completion is harmless: the claimer re-checks the store."""
        if not units:
            return
        c = work_units.c
        rows = [{"unit_key": u.key, "kind": u.kind, "fingerprint": u.fingerprint, "task_id": u.task_id,
                 "gen_hash": u.gen_hash, "scorer_id": u.scorer_id, "scorer_hash": u.scorer_hash, "seq": u.seq,
                 "n_items": len(u.items), "items_json": json.dumps(list(u.items)), "status": "pending",
                 "attempts": 0, "worked": 0} for u in units]
        with self.engine.begin() as conn:
            for i in range(0, len(rows), 500):
                ins = _insert(conn)
                conn.execute(ins.on_conflict_do_update(index_elements=["unit_key"], set_={"status": "pending"},
                                                       where=c.status == "done"), rows[i:i + 500])

    # -- claiming ----------------------------------------------------------------
    def claim(self, units: Sequence[WorkUnit], prefer: dict[str, Any] | None = None) -> WorkUnit | None:
        """Claim one claimable unit among `units` (pending, or claimed with an
        expired lease), those matching `prefer` (e.g. the loaded checkpoint, or a
        list: the checkpoints one loaded vLLM server answers) first."""
        if not units:
            return None
        by_key = {u.key: u for u in units}
        self._expire_dead_local(list(by_key))
        c = work_units.c
        with self.engine.begin() as conn:
            now = _now(conn)
            claimable = and_(c.unit_key.in_(list(by_key)),
                             or_(c.status == "pending", and_(c.status == "claimed", c.expires_at < now)))
            order = [c.seq, c.unit_key]
            if prefer:
                match = and_(*[getattr(c, k).in_(list(v)) if isinstance(v, (list, tuple, set))
                               else getattr(c, k) == v for k, v in prefer.items()])
                order.insert(0, case((match, 0), else_=1))
            pick = (select(c.unit_key).where(claimable).order_by(*order).limit(1)
                    .with_for_update(skip_locked=True).scalar_subquery())
            key = conn.execute(
                update(work_units).where(c.unit_key == pick, claimable)
                .values(status="claimed", owner=self.owner, expires_at=now + self.ttl, attempts=c.attempts + 1)
                .returning(c.unit_key)).scalar()
        return by_key[key] if key else None

    def renew(self, unit: WorkUnit) -> bool:
        """Extend our claim; False when it is no longer ours."""
        c = work_units.c
        with self.engine.begin() as conn:
            now = _now(conn)
            n = conn.execute(update(work_units).where(c.unit_key == unit.key, c.owner == self.owner,
                                                      c.status == "claimed")
                             .values(expires_at=now + self.ttl)).rowcount
        return n == 1

    def complete(self, unit: WorkUnit, *, worked: bool) -> bool:
        """Mark our claimed unit done; False when the claim was lost meanwhile."""
        c = work_units.c
        with self.engine.begin() as conn:
            now = _now(conn)
            n = conn.execute(update(work_units).where(c.unit_key == unit.key, c.owner == self.owner,
                                                      c.status == "claimed")
                             .values(status="done", done_by=self.owner, done_at=now, expires_at=None,
                                     worked=c.worked + (1 if worked else 0))).rowcount
        return n == 1

    def release(self, unit: WorkUnit) -> None:
        """Give a claimed unit back at once (a failure in this worker)."""
        c = work_units.c
        with self.engine.begin() as conn:
            conn.execute(update(work_units).where(c.unit_key == unit.key, c.owner == self.owner,
                                                  c.status == "claimed").values(status="pending"))

    def all_done(self, units: Sequence[WorkUnit]) -> bool:
        keys = [u.key for u in units]
        c = work_units.c
        with self.engine.connect() as conn:
            for i in range(0, len(keys), 500):
                left = conn.execute(select(func.count()).select_from(work_units).where(
                    c.unit_key.in_(keys[i:i + 500]), c.status != "done")).scalar()
                if left:
                    return False
        return True

    @contextmanager
    def holding(self, unit: WorkUnit) -> Iterator[None]:
        """Renew the claim every ttl/3 seconds while the body runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.ttl / 3):
                try:
                    if not self.renew(unit):
                        log.warning("lease on %s unit %s was lost", unit.kind, unit.key[:12])
                        return
                except Exception as exc:  # noqa: BLE001 - a missed beat only risks the lease
                    log.warning("lease renewal failed: %s", exc)

        t = threading.Thread(target=beat, name=f"lease-{unit.key[:8]}", daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join(timeout=5)

    def _expire_dead_local(self, keys: list[str]) -> None:
        """Claims held by processes of this host that no longer exist expire now."""
        host = host_id()
        c = work_units.c
        with self.engine.connect() as conn:
            holders = set()
            for i in range(0, len(keys), 500):
                holders.update(conn.execute(select(c.owner).where(
                    c.unit_key.in_(keys[i:i + 500]), c.status == "claimed").distinct()).scalars())
        dead = [o for o in holders if o and o != self.owner and o.startswith(host + ":")
                and not _pid_alive(o.split(":")[1])]
        if dead:
            with self.engine.begin() as conn:
                conn.execute(update(work_units).where(c.status == "claimed", c.owner.in_(dead))
                             .values(expires_at=0.0))


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    # a zombie (killed child not yet reaped) counts as dead
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class Progress:
    """Units and items of one (checkpoint, task) or scorer, by lease status."""

    kind: str
    fingerprint: str | None
    label: str  # the checkpoint's label (its fingerprint's head if unknown)
    task_id: str | None
    scorer_id: str | None
    units_done: int
    units_claimed: int
    units_pending: int
    items_done: int
    items_total: int


def progress(engine) -> list[Progress]:  # noqa: ANN001
    """Progress per checkpoint x task (generate) and per scorer (score), for `status`."""
    from cai_bench.results import schema as S

    ensure_table(engine)
    c, k = work_units.c, S.checkpoints.c
    done = case((c.status == "done", 1), else_=0)
    claimed = case((c.status == "claimed", 1), else_=0)
    pending = case((c.status == "pending", 1), else_=0)
    q = (select(c.kind, c.fingerprint, func.max(k.label), c.task_id, c.scorer_id, func.sum(done), func.sum(claimed),
                func.sum(pending), func.sum(done * c.n_items), func.sum(c.n_items))
         .select_from(work_units.outerjoin(S.checkpoints, k.fingerprint == c.fingerprint))
         .group_by(c.kind, c.fingerprint, c.task_id, c.scorer_id)
         .order_by(c.kind, c.fingerprint, c.task_id, c.scorer_id))
    with engine.connect() as conn:
        return [Progress(r[0], r[1], r[2] or (r[1] or "")[:12], r[3], r[4], int(r[5] or 0), int(r[6] or 0),
                         int(r[7] or 0), int(r[8] or 0), int(r[9] or 0)) for r in conn.execute(q).all()]


def active_workers(engine) -> list[tuple[str, int, float]]:  # noqa: ANN001
    """(worker, units claimed now, seconds until its earliest claim expires)."""
    ensure_table(engine)
    c = work_units.c
    with engine.connect() as conn:
        now = _now(conn)
        rows = conn.execute(select(c.owner, func.count(), func.min(c.expires_at))
                            .where(c.status == "claimed").group_by(c.owner).order_by(c.owner)).all()
    return [(r[0], int(r[1]), float(r[2] or 0) - now) for r in rows]


def shares(engine) -> dict[str, int]:  # noqa: ANN001
    """Units completed per worker (done_by)."""
    c = work_units.c
    with engine.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(
            select(c.done_by, func.count()).where(c.status == "done").group_by(c.done_by)).all()}
