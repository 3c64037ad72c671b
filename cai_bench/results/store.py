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
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from cai_bench.io import MIN_ANSWER_BYTES, answer_byte_cap, clean_text
from cai_bench.redact import redact_json, redact_obj, redact_text
from cai_bench.results import schema as S
from cai_bench.results.engine import open_engine

log = logging.getLogger("cai_bench.results")

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
    """One (checkpoint, task, generation config) and the prompts in scope, each
    with its input hash (what the model reads: part of the generation key) and
    content hash (what scorers read: part of the score key). Hashes left empty
    match rows stored with empty hashes (tools and tests that do not use them)."""

    fingerprint: str
    task_id: str
    gen_hash: str
    prompt_ids: tuple[str, ...]
    input_hashes: tuple[str, ...] = ()
    content_hashes: tuple[str, ...] = ()

    def input_of(self) -> dict[str, str]:
        return {p: (self.input_hashes[i] if self.input_hashes else "") for i, p in enumerate(self.prompt_ids)}

    def content_of(self) -> dict[str, str]:
        return {p: (self.content_hashes[i] if self.content_hashes else "") for i, p in enumerate(self.prompt_ids)}

    def subset(self, prompt_ids: Sequence[str]) -> "Unit":
        """The same unit narrowed to `prompt_ids` (a work unit's chunk), hashes kept."""
        inputs, contents = self.input_of(), self.content_of()
        ids = tuple(prompt_ids)
        return Unit(self.fingerprint, self.task_id, self.gen_hash, ids,
                    tuple(inputs[p] for p in ids) if self.input_hashes else (),
                    tuple(contents[p] for p in ids) if self.content_hashes else ())


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
    content_hash: str = ""


def _unit_rows(unit: "Unit", run_id: str, rows: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Store rows of one generation unit: its key columns (with each prompt's input hash), the run
    and the time, plus each row's own fields (a response, or an error)."""
    created = now()
    inputs = unit.input_of()
    return [{"fingerprint": unit.fingerprint, "task_id": unit.task_id, "prompt_id": pid,
             "input_hash": inputs.get(pid, ""), "gen_hash": unit.gen_hash, **fields, "run_id": run_id,
             "created_at": created} for pid, fields in rows]


class Store:
    """Results store at `url` (tables created on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url, create=True)  # checks the schema version, marks dead runs interrupted
        self._heartbeats: dict[str, Any] = {}

    def close(self) -> None:
        for beat in self._heartbeats.values():
            beat.stop()
        self._heartbeats.clear()
        self.engine.dispose()

    # -- runs ---------------------------------------------------------------
    def start_run(self, config_json: str, seed: int, version: str, *, heartbeat: bool = True) -> str:
        """A `running` run row with this process's pid and host; while it lives a
        background thread refreshes its heartbeat (see `liveness`)."""
        import os

        from cai_bench.results.liveness import Heartbeat, this_host

        run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        stamp = now()
        with self.engine.begin() as conn:
            conn.execute(S.runs.insert().values(
                run_id=run_id, started_at=stamp, status="running", seed=seed,
                config_json=redact_json(config_json), scorers_json="[]", cai_bench_version=version,
                heartbeat_at=stamp, pid=os.getpid(), host=this_host()))
        if heartbeat:
            self._heartbeats[run_id] = Heartbeat(self.engine, run_id).start()
        return run_id

    def set_run_sample(self, run_id: str, samples: dict[str, Any]) -> None:
        """Which prompts each task's `--limit` drew (mode, seed, ids, per principle)."""
        with self.engine.begin() as conn:
            conn.execute(update(S.runs).where(S.runs.c.run_id == run_id)
                         .values(sample_json=json.dumps(samples, sort_keys=True)))

    def upsert_gen_config(self, gen_hash: str, config: dict[str, Any]) -> None:
        """The generation settings a `gen_hash` stands for (reports name them)."""
        with self.engine.begin() as conn:
            conn.execute(_insert(conn, S.gen_configs).values(
                gen_hash=gen_hash, config_json=json.dumps(redact_obj(config), sort_keys=True))
                .on_conflict_do_nothing(index_elements=["gen_hash"]))

    def set_run_scorers(self, run_id: str, scorers: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(S.runs).where(S.runs.c.run_id == run_id)
                         .values(scorers_json=json.dumps(redact_obj(scorers), sort_keys=True)))

    def finish_run(self, run_id: str, status: str, *, interrupted_by: BaseException | None = None) -> None:
        """The run's final status. `interrupted_by`: the Ctrl-C or SIGTERM that stopped it,
        whose traceback may still hold a statement that keeps the store locked (see
        `liveness.free_interrupted_statements`)."""
        if interrupted_by is not None:
            from cai_bench.results.liveness import free_interrupted_statements

            free_interrupted_statements(interrupted_by)
        beat = self._heartbeats.pop(run_id, None)
        if beat is not None:
            beat.stop()
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
                    metadata: dict[str, Any], prompts: Sequence[dict[str, Any]],
                    current: Mapping[str, str] | None = None) -> None:
        """The task row and its prompt versions. Each prompt row is keyed by its
        content hash, so an edited prompt is a new row beside the old one; the
        versions given here become the task's `current` ones, all others stop
        being current (their answers and scores stay, but are not reported).

        `current` (prompt id -> content hash of every prompt the task holds now) is
        given when `prompts` is only the part a run uses (a `--limit` sample of a
        100k-prompt task stores 5 rows, not 100k): then a stored version stops being
        current only when the task no longer holds it, so answers to prompts other
        runs sampled stay reported."""
        p = S.prompts.c
        with self.engine.begin() as conn:
            ins = _insert(conn, S.tasks).values(
                task_id=task_id, constitution_id=constitution_id, culture=culture, n_prompts=n_prompts,
                metadata_json=json.dumps(redact_obj(metadata), sort_keys=True))
            conn.execute(ins.on_conflict_do_update(
                index_elements=["task_id"],
                set_={k: ins.excluded[k] for k in ("constitution_id", "culture", "n_prompts", "metadata_json")}))
            if current is None:
                if not prompts:
                    return
                conn.execute(update(S.prompts).where(p.task_id == task_id).values(current=0))
            else:
                stale = [(pid, ch) for pid, ch in conn.execute(
                    select(p.prompt_id, p.content_hash).where(p.task_id == task_id, p.current == 1)).all()
                    if current.get(pid) != ch]
                for part in _chunks(stale, 200):
                    conn.execute(update(S.prompts).where(p.task_id == task_id, or_(*[
                        and_(p.prompt_id == pid, p.content_hash == ch) for pid, ch in part])).values(current=0))
            for part in _chunks(list(prompts)):
                ins = _insert(conn, S.prompts)
                conn.execute(ins.on_conflict_do_update(
                    index_elements=["task_id", "prompt_id", "content_hash"],
                    set_={k: ins.excluded[k] for k in ("input_hash", "prompt", "principle_id", "reference",
                                                       "category", "expect", "current")},
                ), [{"task_id": task_id, "content_hash": "", "input_hash": "", **p, "current": 1} for p in part])

    # -- generations --------------------------------------------------------
    def missing_prompts(self, unit: Unit) -> list[str]:
        """Prompt ids of `unit` with no stored response, in the unit's order."""
        done = set(self._stored_prompt_ids(unit))
        return [p for p in unit.prompt_ids if p not in done]

    def _stored_prompt_ids(self, unit: Unit) -> list[str]:
        """Prompt ids answered under the unit's gen config from the prompt version in scope."""
        g = S.generations.c
        wanted = unit.input_of()
        out: list[str] = []
        with self.engine.connect() as conn:
            for part in _chunks(list(unit.prompt_ids)):
                out += [pid for pid, ih in conn.execute(select(g.prompt_id, g.input_hash).where(
                    g.fingerprint == unit.fingerprint, g.task_id == unit.task_id,
                    g.gen_hash == unit.gen_hash, g.prompt_id.in_(part))).all() if wanted.get(pid) == ih]
        return out

    def delete_generations(self, unit: Unit) -> int:
        """`--force`: drop the unit's stored responses and their scores."""
        g, s = S.generations.c, S.scores.c
        wanted = unit.input_of()
        n = 0
        with self.engine.begin() as conn:
            for part in _chunks(list(unit.prompt_ids)):
                ids = [gid for gid, pid, ih in conn.execute(select(g.generation_id, g.prompt_id, g.input_hash).where(
                    g.fingerprint == unit.fingerprint, g.task_id == unit.task_id,
                    g.gen_hash == unit.gen_hash, g.prompt_id.in_(part))).all() if wanted.get(pid) == ih]
                if ids:
                    conn.execute(delete(S.scores).where(s.generation_id.in_(ids)))
                    n += conn.execute(delete(S.generations).where(g.generation_id.in_(ids))).rowcount
                conn.execute(delete(S.generation_errors).where(*self._error_scope(unit, part)))
        return n

    @staticmethod
    def _error_scope(unit: Unit, prompt_ids: Sequence[str]) -> tuple:
        """Error rows of these prompts in the version the unit has in scope (input
        hash): an edited prompt does not inherit the old version's error."""
        e = S.generation_errors.c
        inputs = unit.input_of()
        return (e.fingerprint == unit.fingerprint, e.task_id == unit.task_id, e.gen_hash == unit.gen_hash,
                or_(*[and_(e.prompt_id == p, e.input_hash == inputs.get(p, "")) for p in dict.fromkeys(prompt_ids)]))

    def record_generation_errors(self, run_id: str, unit: Unit, rows: Sequence[tuple[str, str]]) -> int:
        """(prompt_id, error) for prompts that failed for good in this run. They stay
        missing (no response is stored), so a re-run retries them; a later success
        removes the error row."""
        if not rows:
            return 0
        values = _unit_rows(unit, run_id, [(pid, {"error": redact_text(clean_text(err, MIN_ANSWER_BYTES)[0])})
                                           for pid, err in rows])
        with self.engine.begin() as conn:
            ins = _insert(conn, S.generation_errors)
            conn.execute(ins.on_conflict_do_update(
                index_elements=["fingerprint", "task_id", "prompt_id", "input_hash", "gen_hash"],
                set_={k: ins.excluded[k] for k in ("error", "run_id", "created_at")}), values)
        return len(values)

    def generation_errors(self, unit: Unit) -> dict[str, str]:
        """prompt_id -> error for the unit's prompts (in the version in scope) that failed
        and have no response yet."""
        e = S.generation_errors.c
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for part in _chunks(list(unit.prompt_ids)):
                out.update(conn.execute(select(e.prompt_id, e.error).where(*self._error_scope(unit, part))).all())
        return out

    def insert_generations(self, run_id: str, unit: Unit, rows: Sequence[tuple[str, str, float | None]]) -> int:
        """One chunk of (prompt_id, response, seconds) in one transaction; rows
        already stored are left alone. Returns how many were new.

        This is where every model answer enters the store, so hostile model text is
        made storable here (`io.clean_text`): lone surrogates and NUL become U+FFFD
        (one of them used to fail the whole chunk, and the same chunk again on every
        re-run) and an answer past `io.answer_byte_cap` of the unit's max_new_tokens
        is cut; either way the answer ends with a `[cai-bench: answer ...]` line."""
        if not rows:
            return 0
        cap = answer_byte_cap(self._max_new_tokens(unit.gen_hash))
        cleaned = []
        for pid, resp, secs in rows:
            resp, note = clean_text(resp, cap)
            if note:
                log.warning("answer to prompt %s of task %s: %s", pid, unit.task_id, note)
            cleaned.append((pid, {"response": resp, "seconds": secs}))
        values = _unit_rows(unit, run_id, cleaned)
        with self.engine.begin() as conn:
            res = conn.execute(_insert(conn, S.generations).on_conflict_do_nothing(
                index_elements=["fingerprint", "task_id", "prompt_id", "input_hash", "gen_hash"])
                .returning(S.generations.c.generation_id), values)
            new = len(res.all())  # RETURNING yields the rows really inserted; rowcount is -1 on psycopg
            conn.execute(delete(S.generation_errors).where(*self._error_scope(unit, [r[0] for r in rows])))
        return new

    def _max_new_tokens(self, gen_hash: str) -> int | None:
        """The generation limit a unit's answers were asked under (its stored gen config), if known."""
        with self.engine.connect() as conn:
            raw = conn.execute(select(S.gen_configs.c.config_json)
                               .where(S.gen_configs.c.gen_hash == gen_hash)).scalar()
        try:
            value = json.loads(raw).get("max_new_tokens") if raw else None
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    # -- loops and experiments ------------------------------------------------
    def put_loop(self, record: Any) -> None:
        """Record (or replace) a pipeline's loop: a `results.loops.LoopRecord`."""
        self._put_record(S.loops, "loop_id", record)

    def put_experiment(self, record: Any) -> None:
        """Record (or replace) an experiment: a `results.experiments.ExperimentRecord`."""
        self._put_record(S.experiments, "experiment_id", record)

    def _put_record(self, table: Any, key: str, record: Any) -> None:
        """One JSON record per key (the report's loop and experiment sections read them back)."""
        with self.engine.begin() as conn:
            ins = _insert(conn, table)
            row = {key: getattr(record, key), "title": record.title, "updated_at": now(),
                   "record_json": redact_json(record.to_json())}
            conn.execute(ins.on_conflict_do_update(index_elements=[key],
                                                   set_={k: ins.excluded[k] for k in ("title", "updated_at",
                                                                                       "record_json")}), [row])

    # -- scores ---------------------------------------------------------------
    def upsert_scorer_metrics(self, scorer_id: str, scorer_hash: str, metrics: Sequence[Any],
                              config: dict[str, Any]) -> None:
        """The scorer's metric declarations (name, direction, lo, hi, composite, role:
        a `MetricSpec` or alike), which the reports read instead of knowing scorers.
        `config` is stored redacted: a `base_url` with a password, an `api_key`."""
        clean = json.dumps(redact_obj(json.loads(json.dumps(config, default=str))), sort_keys=True)
        with self.engine.begin() as conn:
            ins = _insert(conn, S.scorer_metrics)
            conn.execute(ins.on_conflict_do_update(
                index_elements=["scorer_id", "scorer_hash", "metric"],
                set_={k: ins.excluded[k] for k in ("direction", "lo", "hi", "config_json", "composite", "role")},
            ), [{"scorer_id": scorer_id, "scorer_hash": scorer_hash, "metric": m.name, "direction": m.direction,
                 "lo": m.lo, "hi": m.hi, "config_json": clean,
                 "composite": int(getattr(m, "composite", True)), "role": getattr(m, "role", None)}
                for m in metrics])

    def _scope_generations(self, conn, units: Sequence[Unit]):  # noqa: ANN001, ANN202
        """Rows (generation + prompt version + task) of the stored generations in
        scope: answered from the prompt version in scope, joined to that version."""
        g, p, t = S.generations.c, S.prompts.c, S.tasks.c
        cols = (g.generation_id, g.fingerprint, g.task_id, g.prompt_id, g.gen_hash, g.input_hash, g.response, p.prompt,
                p.reference, p.principle_id, p.category, p.expect, t.constitution_id, p.content_hash)
        for u in units:
            inputs, contents = u.input_of(), u.content_of()
            for part in _chunks(list(u.prompt_ids)):
                ver = (select(p.task_id, p.prompt_id, p.content_hash, p.prompt, p.reference, p.principle_id,
                              p.category, p.expect)
                       .where(p.task_id == u.task_id, p.prompt_id.in_(part),
                              p.content_hash.in_({contents[x] for x in part})).subquery())
                join = (S.generations
                        .join(ver, and_(ver.c.task_id == g.task_id, ver.c.prompt_id == g.prompt_id), isouter=True)
                        .join(S.tasks, t.task_id == g.task_id, isouter=True))
                vcols = [c if c.table is not S.prompts else ver.c[c.name] for c in cols]
                for row in conn.execute(select(*vcols).select_from(join).where(
                        g.fingerprint == u.fingerprint, g.task_id == u.task_id, g.gen_hash == u.gen_hash,
                        g.prompt_id.in_(part)).order_by(g.generation_id)).all():
                    if inputs.get(row.prompt_id) == row.input_hash and (
                            row.content_hash is None or row.content_hash == contents.get(row.prompt_id)):
                        yield row

    def pending_scores(self, units: Sequence[Unit], scorer_id: str, scorer_hash: str,
                       n_metrics: int) -> tuple[list[PendingScore], int]:
        """Generations in scope lacking some of the scorer's metrics, and how many
        generations already have all of them (reused). An `error` row (a 429, a
        timeout) does not count as done: a re-run retries it."""
        s = S.scores.c
        contents = {(u.fingerprint, u.task_id, u.gen_hash): u.content_of() for u in units}
        with self.engine.connect() as conn:
            rows = list(self._scope_generations(conn, units))
            ids = [r.generation_id for r in rows]
            counts: dict[tuple[int, str], int] = {}
            for part in _chunks(ids):
                counts.update({(gid, ch): n for gid, ch, n in conn.execute(
                    select(s.generation_id, s.content_hash, func.count()).where(
                        s.scorer_id == scorer_id, s.scorer_hash == scorer_hash, s.generation_id.in_(part),
                        s.status != "error")
                    .group_by(s.generation_id, s.content_hash)).all()})
        pending = []
        for r in rows:
            ch = contents[(r.fingerprint, r.task_id, r.gen_hash)].get(r.prompt_id, "")
            if counts.get((r.generation_id, ch), 0) < n_metrics:
                pending.append(PendingScore(r.generation_id, r.fingerprint, r.task_id, r.prompt_id, r.response,
                                            r.prompt or "", r.reference, r.principle_id, r.category, r.expect,
                                            r.constitution_id, ch))
        return pending, len(rows) - len(pending)

    def score_statuses(self, units: Sequence[Unit], scorer_id: str, scorer_hash: str) -> list[tuple[str, str]]:
        """(status, reason) of every stored score row of this scorer config for the
        generations in scope: what the end-of-run coverage line counts."""
        from cai_bench.results.coverage import row_reason

        s = S.scores.c
        out: list[tuple[str, str]] = []
        contents = {(u.fingerprint, u.task_id, u.gen_hash): u.content_of() for u in units}
        with self.engine.connect() as conn:
            pairs = [(r.generation_id, contents[(r.fingerprint, r.task_id, r.gen_hash)].get(r.prompt_id, ""))
                     for r in self._scope_generations(conn, units)]
            for ch in {c for _, c in pairs}:
                for part in _chunks([gid for gid, c in pairs if c == ch]):
                    for status, error, detail in conn.execute(select(s.status, s.error, s.detail_json).where(
                            s.scorer_id == scorer_id, s.scorer_hash == scorer_hash, s.content_hash == ch,
                            s.generation_id.in_(part))):
                        out.append((str(status), row_reason(str(status), error, detail)))
        return out

    def scope_content_hashes(self, units: Sequence[Unit]) -> dict[int, str]:
        """generation id -> the content hash of the prompt version in scope, for every
        stored generation in scope (what its scores are keyed by)."""
        contents = {(u.fingerprint, u.task_id, u.gen_hash): u.content_of() for u in units}
        with self.engine.connect() as conn:
            return {r.generation_id: contents[(r.fingerprint, r.task_id, r.gen_hash)].get(r.prompt_id, "")
                    for r in self._scope_generations(conn, units)}

    def scope_generation_ids(self, units: Sequence[Unit]) -> list[int]:
        """Ids of every stored generation in scope, in content order (task, prompt, answer).

        Scoring work units are cut from this list, and a batched scorer's numbers move in the
        last float bits with what shares its batch (padding). Ids follow the order answers were
        stored, which a resumed or multi-worker run interleaves differently; content order gives
        every run with the same answers the same batches, so the same scores."""
        with self.engine.connect() as conn:
            rows = list(self._scope_generations(conn, units))
        rows.sort(key=lambda r: (r.task_id, r.prompt_id, r.response, r.fingerprint, r.generation_id))
        return [r.generation_id for r in rows]

    def pending_scores_among(self, generation_ids: Sequence[int], scorer_id: str, scorer_hash: str,
                             n_metrics: int, content_hashes: dict[int, str] | None = None) -> list[PendingScore]:
        """Like `pending_scores`, for the given generations only (one claimed batch), in the
        order given, each judged against the prompt version of `content_hashes` (from `pending_scores`)."""
        g, p, t, s = S.generations.c, S.prompts.c, S.tasks.c, S.scores.c
        wanted = content_hashes or {}
        rows: list[Any] = []
        counts: dict[tuple[int, str], int] = {}
        versions: dict[tuple[str, str, str], Any] = {}
        with self.engine.connect() as conn:
            for part in _chunks(sorted(int(i) for i in generation_ids)):
                rows += conn.execute(
                    select(g.generation_id, g.fingerprint, g.task_id, g.prompt_id, g.response, t.constitution_id)
                    .select_from(S.generations.join(S.tasks, t.task_id == g.task_id, isouter=True))
                    .where(g.generation_id.in_(part)).order_by(g.generation_id)).all()
                counts.update({(gid, ch): n for gid, ch, n in conn.execute(
                    select(s.generation_id, s.content_hash, func.count()).where(
                        s.scorer_id == scorer_id, s.scorer_hash == scorer_hash, s.generation_id.in_(part),
                        s.status != "error").group_by(s.generation_id, s.content_hash)).all()})
            by_task: dict[str, set[str]] = {}
            for r in rows:
                by_task.setdefault(r.task_id, set()).add(r.prompt_id)
            for task, pids in by_task.items():
                for part in _chunks(sorted(pids)):
                    for v in conn.execute(select(p.task_id, p.prompt_id, p.content_hash, p.current, p.prompt,
                                                 p.reference, p.principle_id, p.category, p.expect)
                                          .where(p.task_id == task, p.prompt_id.in_(part))).all():
                        versions[(v.task_id, v.prompt_id, v.content_hash)] = v
                        if v.current:
                            versions.setdefault((v.task_id, v.prompt_id, "*current"), v)
        out = []
        for r in rows:
            ch = wanted.get(r.generation_id, "")
            if counts.get((r.generation_id, ch), 0) >= n_metrics:
                continue
            v = versions.get((r.task_id, r.prompt_id, ch)) or versions.get((r.task_id, r.prompt_id, "*current"))
            out.append(PendingScore(r.generation_id, r.fingerprint, r.task_id, r.prompt_id, r.response,
                                    (v.prompt if v is not None else "") or "",
                                    v.reference if v is not None else None, v.principle_id if v is not None else None,
                                    v.category if v is not None else None, v.expect if v is not None else None,
                                    r.constitution_id, ch))
        order = {int(i): n for n, i in enumerate(generation_ids)}
        return sorted(out, key=lambda x: order[x.generation_id])

    def delete_scores(self, units: Sequence[Unit], scorer_id: str, scorer_hash: str) -> int:
        """`--force`: drop this scorer config's scores for the generations in scope."""
        s = S.scores.c
        n = 0
        contents = {(u.fingerprint, u.task_id, u.gen_hash): u.content_of() for u in units}
        with self.engine.begin() as conn:
            pairs = [(r.generation_id, contents[(r.fingerprint, r.task_id, r.gen_hash)].get(r.prompt_id, ""))
                     for r in self._scope_generations(conn, units)]
            for ch in {c for _, c in pairs}:
                ids = [g for g, c in pairs if c == ch]
                for part in _chunks(ids):
                    n += conn.execute(delete(S.scores).where(
                        s.scorer_id == scorer_id, s.scorer_hash == scorer_hash, s.content_hash == ch,
                        s.generation_id.in_(part))).rowcount
        return n

    def insert_scores(self, run_id: str, scorer_id: str, scorer_hash: str,
                      rows: Sequence[tuple[int, Any]], content_hashes: dict[int, str] | None = None) -> int:
        """One batch of (generation_id, ScoreRow) in one transaction, each under the
        content hash of the prompt version it was scored against (`content_hashes`,
        from `PendingScore.content_hash`); existing rows kept, except `error` rows,
        which a retry's result replaces."""
        if not rows:
            return 0
        created = now()
        ch = content_hashes or {}
        values = [{"generation_id": gid, "scorer_id": scorer_id, "scorer_hash": scorer_hash,
                   "content_hash": ch.get(gid, ""), "metric": r.metric,
                   "value": r.value, "status": r.status, "error": clean_text(redact_text(r.error), MIN_ANSWER_BYTES)[0] if r.error else r.error,
                   "detail_json": json.dumps(r.detail, sort_keys=True, default=str) if r.detail else None,
                   "run_id": run_id, "created_at": created} for gid, r in rows]
        with self.engine.begin() as conn:
            stmt = _insert(conn, S.scores)
            new = {c: getattr(stmt.excluded, c) for c in ("value", "status", "error", "detail_json", "run_id",
                                                          "created_at")}
            res = conn.execute(stmt.on_conflict_do_update(
                index_elements=["generation_id", "scorer_id", "scorer_hash", "content_hash", "metric"], set_=new,
                where=S.scores.c.status == "error").returning(S.scores.c.score_id), values)
            return len(res.all())
