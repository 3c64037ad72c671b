"""What configurations and runs a store holds (`cai-bench report --list-configs`):
every generation config and scorer config with how much it covers, and every
run with its status (a killed run shows as `interrupted`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, inspect, select

from cai_bench.results import schema as S


@dataclass
class Inventory:
    generation: list[dict[str, Any]] = field(default_factory=list)
    scorers: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    stale_generations: int = 0  # answers to prompt versions that are no longer current


def _json(raw: str | None) -> Any:
    try:
        return json.loads(raw or "{}")
    except ValueError:
        return {}


def inventory(store_url: str) -> Inventory:
    from cai_bench.results.load import open_for_reading

    engine = open_for_reading(store_url)
    try:
        if not inspect(engine).has_table("generations"):
            return Inventory()
        with engine.connect() as conn:
            return _read(conn)
    finally:
        engine.dispose()


def _read(conn) -> Inventory:  # noqa: ANN001
    g, s, p, r = S.generations.c, S.scores.c, S.prompts.c, S.runs.c
    out = Inventory()
    settings = dict(conn.execute(select(S.gen_configs.c.gen_hash, S.gen_configs.c.config_json)).all())
    for gh, n, n_ck, n_task, newest in conn.execute(
            select(g.gen_hash, func.count(), func.count(g.fingerprint.distinct()), func.count(g.task_id.distinct()),
                   func.max(g.created_at)).group_by(g.gen_hash).order_by(func.max(g.created_at).desc())).all():
        out.generation.append({"hash": gh, "settings": _json(settings.get(gh)), "generations": n,
                               "checkpoints": n_ck, "tasks": n_task, "newest": newest})
    m = S.scorer_metrics.c
    configs = {(a, b): _json(c) for a, b, c in conn.execute(
        select(m.scorer_id, m.scorer_hash, m.config_json).distinct()).all()}
    for sid, sh, n, n_gen, newest in conn.execute(
            select(s.scorer_id, s.scorer_hash, func.count(), func.count(s.generation_id.distinct()),
                   func.max(s.created_at)).group_by(s.scorer_id, s.scorer_hash)
            .order_by(s.scorer_id, func.max(s.created_at).desc())).all():
        cfg = configs.get((sid, sh), {})
        out.scorers.append({"scorer": sid, "hash": sh, "identity": cfg.get("identity", cfg), "scores": n,
                            "generations": n_gen, "newest": newest})
    from cai_bench.results.liveness import dead_runs

    # a reader marks nothing: a run whose process is gone is shown as the next writer will mark it
    dead = set(dead_runs(conn.execute(select(r.run_id, r.pid, r.host, r.heartbeat_at, r.started_at)
                                      .where(r.status == "running")).all()))
    for row in conn.execute(select(r.run_id, r.status, r.started_at, r.finished_at, r.host, r.pid)
                            .order_by(r.started_at, r.run_id)).all():
        out.runs.append({**row._mapping, "status": "interrupted" if row.run_id in dead else row.status})
    current = S.generations.join(S.prompts, and_(p.task_id == g.task_id, p.prompt_id == g.prompt_id,
                                                 p.input_hash == g.input_hash, p.current == 1), isouter=True)
    out.stale_generations = int(conn.execute(select(func.count()).select_from(current)
                                             .where(p.prompt_id.is_(None))).scalar() or 0)
    return out
