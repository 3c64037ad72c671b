"""`cai-bench score FILE.jsonl`: score responses produced elsewhere (no generation,
no store). Rows are `{id, prompt, response, reference?, task?}`; the output has
the input columns plus one `<scorer>.<metric>` column per metric (None when the
metric is n/a, unscored or failed; `<scorer>.<metric>.status` says which)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict

from cai_bench.console import safe
from cai_bench.errors import UserError
from cai_bench.io import read_jsonl, validate_rows
from cai_bench.harness.scorers import ScoreInput, ScoreRow


@dataclass
class ScoreFileResult:
    rows: list[dict[str, Any]]
    statuses: list[Any]  # ScorerStatus


class ScoreFileRow(BaseModel):
    """One input row of `cai-bench score`; extra columns pass through to the output."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: Union[str, int]
    prompt: str
    response: str
    reference: Optional[str] = None
    task: Optional[str] = None
    principle_id: Optional[str] = None
    constitution: Optional[str] = None
    category: Optional[str] = None
    expect: Optional[Literal["refuse", "comply"]] = None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a jsonl file; every problem named by file:line and field."""
    pairs = read_jsonl(path, what="rows")
    validate_rows(path, pairs, ScoreFileRow)
    rows: list[dict[str, Any]] = []
    ids: dict[str, int] = {}
    for n, row in pairs:
        rid = str(row["id"])
        if rid in ids:
            raise UserError(f"{path}:{n}: id: duplicate {rid!r} (first on line {ids[rid]})")
        ids[rid] = n
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: no rows")
    return rows


def _inputs(rows: list[dict[str, Any]]) -> list[ScoreInput]:
    from cai_bench.tasks import load_task

    constitutions: dict[str, str | None] = {}
    out = []
    for i, r in enumerate(rows):
        task = r.get("task")
        if task and task not in constitutions:
            try:
                constitutions[task] = load_task(str(task)).constitution
            except UserError:
                constitutions[task] = None  # unknown task: scorers that need a constitution say so
        out.append(ScoreInput(key=str(i), prompt=r["prompt"], response=r["response"], reference=r.get("reference"),
                              task_id=task, prompt_id=str(r["id"]), principle_id=r.get("principle_id"),
                              constitution_id=constitutions.get(task) if task else r.get("constitution"),
                              category=r.get("category"), expect=r.get("expect")))
    return out


def score_file(path: Path, scorer_ids: list[str], progress: Any = None,
               settings: dict[str, dict[str, Any]] | None = None) -> ScoreFileResult:
    """Score every row of `path` with `scorer_ids` ('all' allowed); `settings`:
    scorer id -> its config (a scorer named only there joins the run)."""
    from cai_bench.harness.config import ScorerEntry
    from cai_bench.harness.scoring import batch_size_of, prepare_scorers, score_inputs

    rows = read_rows(path)
    inputs = _inputs(rows)
    given = {s: v for s, v in (settings or {}).items() if v}
    names = list(dict.fromkeys(scorer_ids))
    entries = [ScorerEntry(id=s, settings=given.get(s, {})) for s in names]
    entries += [ScorerEntry(id=s, settings=v) for s, v in given.items() if s not in names]
    prepared = prepare_scorers(entries)
    out = [dict(r) for r in rows]
    for scorer, status in prepared:
        if scorer is None:
            continue
        bar = progress.add_task(safe(f"score {scorer.id}"), total=len(inputs)) if progress is not None else None
        try:
            scorer.ensure_loaded()
        except Exception as exc:  # noqa: BLE001 - reported as unavailable, others go on
            status.available, status.reason = False, f"could not load: {exc}"
            continue

        def save(batch: list[ScoreInput], got: list[ScoreRow], _sid: str = scorer.id) -> None:
            for r in got:
                row = out[int(r.key)]
                row[f"{_sid}.{r.metric}"] = r.value
                if r.status != "ok":
                    row[f"{_sid}.{r.metric}.status"] = r.status
                    if r.error:
                        row[f"{_sid}.{r.metric}.error"] = r.error
            status.scored += len(batch)
            if bar is not None:
                progress.advance(bar, len(batch))

        try:
            score_inputs(scorer, inputs, batch_size_of(scorer), save)
        finally:
            scorer.close()
    return ScoreFileResult(out, [st for _, st in prepared])


def write_rows(rows: list[dict[str, Any]], dest: Path) -> None:
    """jsonl, or csv when `dest` ends in .csv (atomic)."""
    from cai_bench.paths import atomic_write_text

    if dest.suffix.lower() == ".csv":
        import pandas as pd

        from cai_bench.escape import csv_frame

        atomic_write_text(dest, csv_frame(pd.DataFrame(rows)).to_csv(index=False))
    else:
        atomic_write_text(dest, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
