"""Declarations for results stored before scorers and tasks made them.

A store written before metrics declared `composite`/`role` holds NULL in both for
those metric rows; one written before task.yaml could declare `analyses`/`metrics`
holds task rows without them. Before a report, such rows get what the scorer with
that id and the task with that id declare now (a run writes the declarations of
what it runs anyway). Nothing here names a scorer or a task: it reads the registry
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

log = logging.getLogger("cai_bench.harness")


def fill_declarations(store_url: str) -> int:
    """Fill undeclared metric rows and task rows in the store from the current
    scorer and task definitions; the number of rows changed. Metrics of a scorer
    that is not installed now, and tasks no longer found, stay as they are."""
    try:
        engine = open_engine(store_url, create=False)
    except FileNotFoundError:
        return 0
    try:
        return _fill_metrics(engine) + _fill_tasks(engine)
    finally:
        engine.dispose()


def _fill_metrics(engine) -> int:  # noqa: ANN001
    from cai_bench.harness.scorers import scorer_class, scorer_ids

    m = S.scorer_metrics.c
    with engine.connect() as conn:
        todo = conn.execute(select(m.scorer_id, m.metric).where(m.composite.is_(None), m.role.is_(None))
                            .distinct()).all()
    if not todo:
        return 0
    known = set(scorer_ids())
    changed = 0
    with engine.begin() as conn:
        for scorer_id, metric in todo:
            try:
                specs = {s.name: s for s in scorer_class(scorer_id).metrics} if scorer_id in known else {}
            except (ImportError, UserError) as exc:
                log.debug("no declarations for %s: %s", scorer_id, exc)
                continue
            spec = specs.get(metric)
            if spec is None:
                continue
            changed += conn.execute(update(S.scorer_metrics)
                                    .where(m.scorer_id == scorer_id, m.metric == metric, m.composite.is_(None))
                                    .values(composite=int(spec.composite), role=spec.role)).rowcount or 0
    return changed


def _fill_tasks(engine) -> int:  # noqa: ANN001
    from cai_bench.tasks import load_task

    t = S.tasks.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.task_id, t.metadata_json)).all()
    changed = 0
    for task_id, raw in rows:
        try:
            meta = json.loads(raw or "{}")
        except ValueError:
            continue
        if not isinstance(meta, dict) or "analyses" in meta:
            continue
        try:
            task = load_task(task_id)
        except UserError:
            continue
        meta["analyses"] = list(task.analyses)
        meta["metrics"] = {k: v.model_dump(exclude_none=True) for k, v in task.metrics.items()}
        with engine.begin() as conn:
            conn.execute(update(S.tasks).where(t.task_id == task_id)
                         .values(metadata_json=json.dumps(meta, sort_keys=True)))
        changed += 1
    return changed
