"""The one module that writes SQL to the results store (SQLAlchemy Core).

Every write is an idempotent upsert or an insert that ignores rows already
there (the unique constraints of `schema`), and each chunk of work is
one transaction: a killed run loses at most the chunk in flight, and a re-run
never stores a (checkpoint, task, prompt, gen config) or (generation, scorer,
config, metric) twice. SQLite and PostgreSQL share this code: only the
dialect's `insert ... on conflict` differs, picked in `_insert`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, delete, func, select, update

from cai_bench.redact import redact_obj, redact_text
from cai_bench.results import schema as S

_IN_CHUNK = 500  # keep IN (...) lists well under SQLite's variable limit


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _insert(conn, table):  # noqa: ANN001, ANN202
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - only the two supported back ends
        raise NotImplementedError(f"results store on {name!r} is not supported (sqlite, postgresql)")
    return insert(table)


def _chunks(seq: Sequence[Any], n: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


@dataclass(frozen=True)
class Unit:
    """One (checkpoint, task, generation config) and the prompt ids in scope."""

    fingerprint: str
    task_id: str
    gen_hash: str
    prompt_ids: tuple[str, ...]


@dataclass(frozen=True)
class PendingScore:
    """A stored generation that lacks some metric of a scorer."""

    generation_id: int
    fingerprint: str
    task_id: str
    prompt_id: str
    response: str
    prompt: str
    reference: str | None
    principle_id: str | None
    category: str | None
    expect: str | None
    constitution_id: str | None


class Store:
    """Results store at `url` (tables created on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = S.open_engine(url, create=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- runs ---------------------------------------------------------------
    def start_run(self, config_json: str, seed: int, version: str) -> str:
        run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        with self.engine.begin() as conn:
            conn.execute(S.runs.insert().values(
                run_id=run_id, started_at=now(), status="running", seed=seed,
                config_json=config_json, scorers_json="[]", cai_bench_version=version))
        return run_id

    def set_run_scorers(self, run_id: str, scorers: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(S.runs).where(S.runs.c.run_id == run_id)
                         .values(scorers_json=json.dumps(redact_obj(scorers), sort_keys=True)))

    def finish_run(self, run_id: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(S.runs).where(S.runs.c.run_id == run_id)
                         .values(status=status, finished_at=now()))

    # -- checkpoints, tasks, prompts --------------------------------------
    def upsert_checkpoint(self, run_id: str, *, fingerprint: str, spec: str, kind: str, label: str,
                          metadata: dict[str, Any]) -> None:
        row = {"fingerprint": fingerprint, "spec": spec, "kind": kind, "label": label,
               "metadata_json": json.dumps(redact_obj(metadata), sort_keys=True, default=str)}
        with self.engine.begin() as conn:
            ins = _insert(conn, S.checkpoints).values(**row)
            conn.execute(ins.on_conflict_do_update(
                index_elements=["fingerprint"],
                set_={k: ins.excluded[k] for k in ("spec", "kind", "label", "metadata_json")}))
            conn.execute(_insert(conn, S.run_checkpoints).values(run_id=run_id, fingerprint=fingerprint)
                         .on_conflict_do_nothing(index_elements=["run_id", "fingerprint"]))

    def upsert_task(self, *, task_id: str, constitution_id: str, culture: str, n_prompts: int,
                    metadata: dict[str, Any], prompts: Sequence[dict[str, Any]]) -> None:
        """The task row and its prompt rows (text, reference...), refreshed on every run."""
        with self.engine.begin() as conn:
            ins = _insert(conn, S.tasks).values(
                task_id=task_id, constitution_id=constitution_id, culture=culture, n_prompts=n_prompts,
                metadata_json=json.dumps(metadata, sort_keys=True))
            conn.execute(ins.on_conflict_do_update(
                index_elements=["task_id"],
                set_={k: ins.excluded[k] for k in ("constitution_id", "culture", "n_prompts", "metadata_json")}))
            for part in _chunks(list(prompts)):
                ins = _insert(conn, S.prompts)
                conn.execute(ins.on_conflict_do_update(
                    index_elements=["task_id", "prompt_id"],
                    set_={k: ins.excluded[k] for k in ("prompt", "principle_id", "reference", "category", "expect")},
                ), [{"task_id": task_id, **p} for p in part])

    # -- generations --------------------------------------------------------
    def missing_prompts(self, unit: Unit) -> list[str]:
        """Prompt ids of `unit` with no stored response, in the unit's order."""
        done = set(self._stored_prompt_ids(unit))
        return [p for p in unit.prompt_ids if p not in done]

    def _stored_prompt_ids(self, unit: Unit) -> list[str]:
        g = S.generations.c
        out: list[str] = []
        with self.engine.connect() as conn:
            for part in _chunks(list(unit.prompt_ids)):
                out += conn.execute(select(g.prompt_id).where(
                    g.fingerprint == unit.fingerprint, g.task_id == unit.task_id,
                    g.gen_hash == unit.gen_hash, g.prompt_id.in_(part))).scalars().all()
        return out

    def delete_generations(self, unit: Unit) -> int:
        """`--force`: drop the unit's stored responses and their scores."""
        g, s = S.generations.c, S.scores.c
        n = 0
        with self.engine.begin() as conn:
            for part in _chunks(list(unit.prompt_ids)):
                ids = conn.execute(select(g.generation_id).where(
                    g.fingerprint == unit.fingerprint, g.task_id == unit.task_id,
                    g.gen_hash == unit.gen_hash, g.prompt_id.in_(part))).scalars().all()
                if ids:
                    conn.execute(delete(S.scores).where(s.generation_id.in_(ids)))
                    n += conn.execute(delete(S.generations).where(g.generation_id.in_(ids))).rowcount
                conn.execute(delete(S.generation_errors).where(*self._error_scope(unit, part)))
        return n

    @staticmethod
    def _error_scope(unit: Unit, prompt_ids: Sequence[str]) -> tuple:
        e = S.generation_errors.c
        return (e.fingerprint == unit.fingerprint, e.task_id == unit.task_id, e.gen_hash == unit.gen_hash,
                e.prompt_id.in_(list(prompt_ids)))

    def record_generation_errors(self, run_id: str, unit: Unit, rows: Sequence[tuple[str, str]]) -> int:
        """(prompt_id, error) for prompts that failed for good in this run. They stay
        missing (no response is stored), so a re-run retries them; a later success
        removes the error row."""
        if not rows:
            return 0
        created = now()
        values = [{"fingerprint": unit.fingerprint, "task_id": unit.task_id, "prompt_id": pid,
                   "gen_hash": unit.gen_hash, "error": err, "run_id": run_id, "created_at": created}
                  for pid, err in rows]
        with self.engine.begin() as conn:
            ins = _insert(conn, S.generation_errors)
            conn.execute(ins.on_conflict_do_update(
                index_elements=["fingerprint", "task_id", "prompt_id", "gen_hash"],
                set_={k: ins.excluded[k] for k in ("error", "run_id", "created_at")}), values)
        return len(values)

    def generation_errors(self, unit: Unit) -> dict[str, str]:
        """prompt_id -> error for the unit's prompts that failed and have no response yet."""
        e = S.generation_errors.c
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for part in _chunks(list(unit.prompt_ids)):
                out.update(conn.execute(select(e.prompt_id, e.error).where(*self._error_scope(unit, part))).all())
        return out

    def insert_generations(self, run_id: str, unit: Unit, rows: Sequence[tuple[str, str, float | None]]) -> int:
        """One chunk of (prompt_id, response, seconds) in one transaction; rows
        already stored are left alone. Returns how many were new."""
        if not rows:
            return 0
        created = now()
        values = [{"fingerprint": unit.fingerprint, "task_id": unit.task_id, "prompt_id": pid,
                   "gen_hash": unit.gen_hash, "response": resp, "seconds": secs, "run_id": run_id,
                   "created_at": created} for pid, resp, secs in rows]
        with self.engine.begin() as conn:
            res = conn.execute(_insert(conn, S.generations).on_conflict_do_nothing(
                index_elements=["fingerprint", "task_id", "prompt_id", "gen_hash"])
                .returning(S.generations.c.generation_id), values)
            new = len(res.all())  # RETURNING yields the rows really inserted; rowcount is -1 on psycopg
            conn.execute(delete(S.generation_errors).where(*self._error_scope(unit, [r[0] for r in rows])))
        return new

    # -- scores ---------------------------------------------------------------
    def upsert_scorer_metrics(self, scorer_id: str, scorer_hash: str, metrics: Sequence[Any],
                              config: dict[str, Any]) -> None:
        """The scorer's metric declarations (name, direction, lo, hi, composite, role:
        a `MetricSpec` or alike), which the reports read instead of knowing scorers."""
        with self.engine.begin() as conn:
            ins = _insert(conn, S.scorer_metrics)
            conn.execute(ins.on_conflict_do_update(
                index_elements=["scorer_id", "scorer_hash", "metric"],
                set_={k: ins.excluded[k] for k in ("direction", "lo", "hi", "config_json", "composite", "role")},
            ), [{"scorer_id": scorer_id, "scorer_hash": scorer_hash, "metric": m.name, "direction": m.direction,
                 "lo": m.lo, "hi": m.hi, "config_json": json.dumps(config, sort_keys=True, default=str),
                 "composite": int(getattr(m, "composite", True)), "role": getattr(m, "role", None)}
                for m in metrics])

    def _scope_generations(self, conn, units: Sequence[Unit]):  # noqa: ANN001, ANN202
        """Rows (generation + prompt + task) of the stored generations in scope."""
        g, p, t = S.generations.c, S.prompts.c, S.tasks.c
        cols = (g.generation_id, g.fingerprint, g.task_id, g.prompt_id, g.response, p.prompt, p.reference,
                p.principle_id, p.category, p.expect, t.constitution_id)
        join = (S.generations
                .join(S.prompts, and_(p.task_id == g.task_id, p.prompt_id == g.prompt_id), isouter=True)
                .join(S.tasks, t.task_id == g.task_id, isouter=True))
        for u in units:
            for part in _chunks(list(u.prompt_ids)):
                yield from conn.execute(select(*cols).select_from(join).where(
                    g.fingerprint == u.fingerprint, g.task_id == u.task_id, g.gen_hash == u.gen_hash,
                    g.prompt_id.in_(part)).order_by(g.generation_id)).all()

    def pending_scores(self, units: Sequence[Unit], scorer_id: str, scorer_hash: str,
                       n_metrics: int) -> tuple[list[PendingScore], int]:
        """Generations in scope lacking some of the scorer's metrics, and how many
        generations already have all of them (reused). An `error` row (a 429, a
        timeout) does not count as done: a re-run retries it."""
        s = S.scores.c
        with self.engine.connect() as conn:
            rows = list(self._scope_generations(conn, units))
            ids = [r.generation_id for r in rows]
            counts: dict[int, int] = {}
            for part in _chunks(ids):
                counts.update(conn.execute(
                    select(s.generation_id, func.count()).where(
                        s.scorer_id == scorer_id, s.scorer_hash == scorer_hash, s.generation_id.in_(part),
                        s.status != "error")
                    .group_by(s.generation_id)).all())
        pending = [PendingScore(r.generation_id, r.fingerprint, r.task_id, r.prompt_id, r.response,
                                r.prompt or "", r.reference, r.principle_id, r.category, r.expect,
                                r.constitution_id)
                   for r in rows if counts.get(r.generation_id, 0) < n_metrics]
        return pending, len(rows) - len(pending)

    def score_statuses(self, units: Sequence[Unit], scorer_id: str, scorer_hash: str) -> list[tuple[str, str]]:
        """(status, reason) of every stored score row of this scorer config for the
        generations in scope: what the end-of-run coverage line counts."""
        from cai_bench.results.coverage import row_reason

        s = S.scores.c
        out: list[tuple[str, str]] = []
        with self.engine.connect() as conn:
            ids = [r.generation_id for r in self._scope_generations(conn, units)]
            for part in _chunks(ids):
                for status, error, detail in conn.execute(select(s.status, s.error, s.detail_json).where(
                        s.scorer_id == scorer_id, s.scorer_hash == scorer_hash, s.generation_id.in_(part))):
                    out.append((str(status), row_reason(str(status), error, detail)))
        return out

    def scope_generation_ids(self, units: Sequence[Unit]) -> list[int]:
        """Ids of every stored generation in scope, ascending (scoring work units are cut from these)."""
        with self.engine.connect() as conn:
            return sorted(r.generation_id for r in self._scope_generations(conn, units))

    def pending_scores_among(self, generation_ids: Sequence[int], scorer_id: str, scorer_hash: str,
                             n_metrics: int) -> list[PendingScore]:
        """Like `pending_scores`, for the given generations only (one claimed batch)."""
        g, p, t, s = S.generations.c, S.prompts.c, S.tasks.c, S.scores.c
        cols = (g.generation_id, g.fingerprint, g.task_id, g.prompt_id, g.response, p.prompt, p.reference,
                p.principle_id, p.category, p.expect, t.constitution_id)
        join = (S.generations
                .join(S.prompts, and_(p.task_id == g.task_id, p.prompt_id == g.prompt_id), isouter=True)
                .join(S.tasks, t.task_id == g.task_id, isouter=True))
        rows, counts = [], {}
        with self.engine.connect() as conn:
            for part in _chunks(sorted(int(i) for i in generation_ids)):
                rows += conn.execute(select(*cols).select_from(join).where(g.generation_id.in_(part))
                                     .order_by(g.generation_id)).all()
                counts.update(conn.execute(
                    select(s.generation_id, func.count()).where(
                        s.scorer_id == scorer_id, s.scorer_hash == scorer_hash, s.generation_id.in_(part),
                        s.status != "error").group_by(s.generation_id)).all())
        return [PendingScore(r.generation_id, r.fingerprint, r.task_id, r.prompt_id, r.response, r.prompt or "",
                             r.reference, r.principle_id, r.category, r.expect, r.constitution_id)
                for r in rows if counts.get(r.generation_id, 0) < n_metrics]

    def delete_scores(self, units: Sequence[Unit], scorer_id: str, scorer_hash: str) -> int:
        """`--force`: drop this scorer config's scores for the generations in scope."""
        s = S.scores.c
        n = 0
        with self.engine.begin() as conn:
            ids = [r.generation_id for r in self._scope_generations(conn, units)]
            for part in _chunks(ids):
                n += conn.execute(delete(S.scores).where(
                    s.scorer_id == scorer_id, s.scorer_hash == scorer_hash, s.generation_id.in_(part))).rowcount
        return n

    def insert_scores(self, run_id: str, scorer_id: str, scorer_hash: str,
                      rows: Sequence[tuple[int, Any]]) -> int:
        """One batch of (generation_id, ScoreRow) in one transaction; existing rows
        kept, except `error` rows, which a retry's result replaces."""
        if not rows:
            return 0
        created = now()
        values = [{"generation_id": gid, "scorer_id": scorer_id, "scorer_hash": scorer_hash, "metric": r.metric,
                   "value": r.value, "status": r.status, "error": redact_text(r.error) if r.error else r.error,
                   "detail_json": json.dumps(r.detail, sort_keys=True, default=str) if r.detail else None,
                   "run_id": run_id, "created_at": created} for gid, r in rows]
        with self.engine.begin() as conn:
            stmt = _insert(conn, S.scores)
            new = {c: getattr(stmt.excluded, c) for c in ("value", "status", "error", "detail_json", "run_id",
                                                          "created_at")}
            res = conn.execute(stmt.on_conflict_do_update(
                index_elements=["generation_id", "scorer_id", "scorer_hash", "metric"], set_=new,
                where=S.scores.c.status == "error").returning(S.scores.c.score_id), values)
            return len(res.all())
