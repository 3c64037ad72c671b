"""Declarations for results stored before scorers and tasks made them.

A store written before metrics declared `composite`/`role` holds NULL in both for
those metric rows; one written before task.yaml could declare `analyses`/`metrics`
holds task rows without them. A report reads what the scorer with that id and the
task with that id declare now and applies it in memory (`late_declarations`);
`report --migrate` writes it (`fill_declarations`). A run writes the declarations
of what it runs anyway. Nothing here names a scorer or a task: it reads the registry
and the task loader, which is why it lives in the harness and not in `results`
(which must not import either).
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select, update

from cai_bench.errors import UserError
from cai_bench.results import schema as S
from cai_bench.results.engine import open_engine
from cai_bench.results.load import LateDeclarations

log = logging.getLogger("cai_bench.harness")


def late_declarations(store_url: str) -> LateDeclarations:
    """Today's declarations for the store's undeclared metric rows and task rows, read only:
    the report applies them in memory (a read-only store is reportable). Metrics of a scorer
    that is not installed now, and tasks no longer found, stay undeclared."""
    try:
        engine = open_engine(store_url, create=False, read_only=True)
    except FileNotFoundError:
        return LateDeclarations()
    try:
        return LateDeclarations(metrics=_late_metrics(engine), tasks=_late_tasks(engine))
    finally:
        engine.dispose()


def fill_declarations(store_url: str) -> int:
    """Write `late_declarations` into the store (`report --migrate`); the number of rows changed."""
    late = late_declarations(store_url)
    if not late.metrics and not late.tasks:
        return 0
    engine = open_engine(store_url, create=False)
    m, t = S.scorer_metrics.c, S.tasks.c
    changed = 0
    try:
        with engine.begin() as conn:
            for (scorer_id, metric), (composite, role) in late.metrics.items():
                changed += conn.execute(update(S.scorer_metrics)
                                        .where(m.scorer_id == scorer_id, m.metric == metric, m.composite.is_(None),
                                               m.role.is_(None))
                                        .values(composite=int(composite), role=role)).rowcount or 0
            for task_id, declared in late.tasks.items():
                raw = conn.execute(select(t.metadata_json).where(t.task_id == task_id)).scalar()
                meta = json.loads(raw or "{}")
                conn.execute(update(S.tasks).where(t.task_id == task_id)
                             .values(metadata_json=json.dumps({**meta, **declared}, sort_keys=True)))
                changed += 1
    finally:
        engine.dispose()
    return changed


def _late_metrics(engine) -> dict[tuple[str, str], tuple[bool, str | None]]:  # noqa: ANN001
    from cai_bench.harness.scorers import scorer_class, scorer_ids

    m = S.scorer_metrics.c
    with engine.connect() as conn:
        todo = conn.execute(select(m.scorer_id, m.metric).where(m.composite.is_(None), m.role.is_(None))
                            .distinct()).all()
    if not todo:
        return {}
    known = set(scorer_ids())
    out: dict[tuple[str, str], tuple[bool, str | None]] = {}
    for scorer_id, metric in todo:
        try:
            specs = {s.name: s for s in scorer_class(scorer_id).metrics} if scorer_id in known else {}
        except (ImportError, UserError) as exc:
            log.debug("no declarations for %s: %s", scorer_id, exc)
            continue
        spec = specs.get(metric)
        if spec is not None:
            out[(scorer_id, metric)] = (bool(spec.composite), spec.role)
    return out


def _late_tasks(engine) -> dict[str, dict]:  # noqa: ANN001
    from cai_bench.tasks import load_task

    t = S.tasks.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.task_id, t.metadata_json)).all()
    out: dict[str, dict] = {}
    for task_id, raw in rows:
        try:
            meta = json.loads(raw or "{}")
        except ValueError:
            continue
        if not isinstance(meta, dict) or "analyses" in meta:
            continue
        try:
            task = load_task(task_id)
        except (UserError, OSError):  # not found, or a task folder this user cannot read: stays undeclared
            continue
        out[task_id] = {"analyses": list(task.analyses),
                        "metrics": {k: v.model_dump(exclude_none=True) for k, v in task.metrics.items()}}
    return out
