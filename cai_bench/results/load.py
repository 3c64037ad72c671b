"""Read the results store into one long DataFrame (one row per score row).

Which data: for each (checkpoint, task) the generation config (`gen_hash`) whose
newest generation is the latest wins; then, within it, for each scorer the
scorer config (`scorer_hash`) whose newest score row is the latest wins. Ties
break on the hash string, so the choice never depends on row order. Older
configs stay in the store but do not reach the report.

Each row carries its metric's declaration (direction, lo, hi, `in_composite`,
`role`) and `StoreExtras.task_analyses` the analyses each task asked for, so the
reports decide from data, never from a scorer or task id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select

from cai_bench.errors import UserError
from cai_bench.results import schema as S
from cai_bench.results.coverage import row_reason

COLUMNS = [
    "fingerprint", "label", "spec", "task_id", "constitution_id", "culture", "prompt_id",
    "principle_id", "category", "expect", "prompt", "reference", "response", "gen_hash",
    "scorer_id", "scorer_hash", "metric", "value", "status", "error", "direction", "lo", "hi", "reason",
    "in_composite", "role",
]


@dataclass
class StoreExtras:
    """What the report needs besides score rows: scorer availability, principle titles."""

    unavailable: list[dict[str, Any]] = field(default_factory=list)  # [{scorer_id, reason, run_id}]
    principle_titles: dict[tuple[str, str], str] = field(default_factory=dict)  # (task_id, pid) -> title
    latest_activity: str | None = None  # newest created_at among the chosen rows
    task_analyses: dict[str, tuple[str, ...]] = field(default_factory=dict)  # task_id -> e.g. ("refusal",)


def _engine(store_url: str):
    try:
        return S.open_engine(store_url, create=False)
    except FileNotFoundError as exc:
        raise UserError(f"results store {exc.args[0]} does not exist: run `cai-bench run` first "
                        "or pass --store") from None


# Free text stays as Python objects: merges then copy references, not the text itself.
_TEXT = frozenset({"response", "prompt", "reference", "error", "metadata_json", "detail_json", "reason"})


def _frame(conn, stmt, columns: list[str]) -> pd.DataFrame:
    rows = conn.execute(stmt).fetchall()
    cols = list(zip(*rows)) if rows else [()] * len(columns)
    return pd.DataFrame({name: pd.Series(list(vals), dtype=object if name in _TEXT else None)
                         for name, vals in zip(columns, cols)}, columns=columns)


def _latest(df: pd.DataFrame, keys: list[str], choice: str) -> pd.DataFrame:
    """Per `keys`, the `choice` value with the newest `newest`, ties by the value itself."""
    ordered = df.sort_values([*keys, "newest", choice], kind="mergesort")
    return ordered.drop_duplicates(keys, keep="last")[[*keys, choice]]


def _has_tables(engine) -> bool:
    from sqlalchemy import inspect

    return inspect(engine).has_table("scores")


def load_results(store_url: str) -> pd.DataFrame:
    """The store's latest results as a long DataFrame with the `COLUMNS` columns
    (empty, with those columns, when the store holds no scores)."""
    df, _ = load_results_with_extras(store_url)
    return df


def load_results_with_extras(store_url: str) -> tuple[pd.DataFrame, StoreExtras]:
    engine = _engine(store_url)
    try:
        if not _has_tables(engine):
            return pd.DataFrame(columns=COLUMNS), StoreExtras()
        with engine.connect() as conn:
            return _load(conn)
    finally:
        engine.dispose()


def _load(conn) -> tuple[pd.DataFrame, StoreExtras]:
    g, s = S.generations.c, S.scores.c
    gens = _frame(
        conn,
        select(g.generation_id, g.fingerprint, g.task_id, g.prompt_id, g.gen_hash, g.response, g.created_at),
        ["generation_id", "fingerprint", "task_id", "prompt_id", "gen_hash", "response", "created_at"],
    )
    sc = _frame(
        conn,
        select(s.generation_id, s.scorer_id, s.scorer_hash, s.metric, s.value, s.status, s.error, s.detail_json,
               s.created_at),
        ["generation_id", "scorer_id", "scorer_hash", "metric", "value", "status", "error", "detail_json",
         "score_created_at"],
    )
    # why a row has no value: the error text, or an na row's reason kept in its detail
    sc["reason"] = pd.Series([row_reason(str(st), e, d) for st, e, d in zip(sc["status"], sc["error"],
                                                                              sc["detail_json"])],
                             index=sc.index, dtype=object)
    sc = sc.drop(columns=["detail_json"])
    extras = StoreExtras(unavailable=_unavailable(conn))
    if gens.empty or sc.empty:
        return pd.DataFrame(columns=COLUMNS), extras

    unit = ["fingerprint", "task_id"]
    newest = gens.groupby([*unit, "gen_hash"], sort=False)["created_at"].max().rename("newest").reset_index()
    gens = gens.merge(_latest(newest, unit, "gen_hash"), on=[*unit, "gen_hash"])

    sc = sc.merge(gens[["generation_id", *unit]], on="generation_id")
    newest = (sc.groupby([*unit, "scorer_id", "scorer_hash"], sort=False)["score_created_at"].max()
              .rename("newest").reset_index())
    sc = sc.merge(_latest(newest, [*unit, "scorer_id"], "scorer_hash"), on=[*unit, "scorer_id", "scorer_hash"])
    latest = max(str(gens["created_at"].max()), str(sc["score_created_at"].max()))
    sc = sc.drop(columns=[*unit, "score_created_at"])

    df = sc.merge(gens.drop(columns=["created_at"]), on="generation_id")
    c, t, p, m = S.checkpoints.c, S.tasks.c, S.prompts.c, S.scorer_metrics.c
    ckpts = _frame(conn, select(c.fingerprint, c.label, c.spec), ["fingerprint", "label", "spec"])
    tasks = _frame(conn, select(t.task_id, t.constitution_id, t.culture, t.metadata_json),
                   ["task_id", "constitution_id", "culture", "metadata_json"])
    prompts = _frame(
        conn,
        select(p.task_id, p.prompt_id, p.principle_id, p.category, p.expect, p.prompt, p.reference),
        ["task_id", "prompt_id", "principle_id", "category", "expect", "prompt", "reference"],
    )
    metrics = _frame(conn, select(m.scorer_id, m.scorer_hash, m.metric, m.direction, m.lo, m.hi, m.composite,
                                  m.role),
                     ["scorer_id", "scorer_hash", "metric", "direction", "lo", "hi", "in_composite", "role"])
    extras.principle_titles = _titles(tasks)
    extras.task_analyses = _analyses(tasks)
    extras.latest_activity = latest

    df = (df.merge(ckpts, on="fingerprint", how="left")
            .merge(tasks.drop(columns=["metadata_json"]), on="task_id", how="left")
            .merge(prompts, on=["task_id", "prompt_id"], how="left")
            .merge(metrics, on=["scorer_id", "scorer_hash", "metric"], how="left"))
    df["label"] = _unique_labels(df["label"], df["fingerprint"])
    df["spec"] = df["spec"].fillna("")
    df["culture"] = df["culture"].fillna("unknown")
    df["constitution_id"] = df["constitution_id"].fillna("unknown")
    df["direction"] = df["direction"].fillna("higher")
    df["in_composite"] = pd.to_numeric(df["in_composite"], errors="coerce").fillna(1).astype(bool)
    df["role"] = df["role"].astype(object).where(df["role"].notna(), None)
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    for col in ("lo", "hi"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df = df[COLUMNS].sort_values(
        ["culture", "task_id", "label", "fingerprint", "prompt_id", "scorer_id", "metric"], kind="mergesort"
    ).reset_index(drop=True)
    return df, extras


def _unique_labels(label: pd.Series, fingerprint: pd.Series) -> pd.Series:
    """Checkpoint labels, with a fingerprint prefix added where two checkpoints share one
    (tables and plots key on the label)."""
    label = label.fillna(fingerprint.str[:12])
    pairs = pd.DataFrame({"label": label, "fp": fingerprint}).drop_duplicates()
    shared = set(pairs.loc[pairs["label"].duplicated(keep=False), "label"])
    if not shared:
        return label
    clash = label.isin(shared)
    return label.where(~clash, label + " (" + fingerprint.str[:8] + ")")


def _analyses(tasks: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """task_id -> the analyses its task.yaml asked for (`analyses: [refusal]`)."""
    out: dict[str, tuple[str, ...]] = {}
    for task_id, raw in zip(tasks["task_id"], tasks["metadata_json"]):
        try:
            found = json.loads(raw or "{}").get("analyses") or []
        except (ValueError, AttributeError):
            continue
        if isinstance(found, list) and found:
            out[str(task_id)] = tuple(str(a) for a in found)
    return out


def _titles(tasks: pd.DataFrame) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for task_id, raw in zip(tasks["task_id"], tasks["metadata_json"]):
        try:
            principles = json.loads(raw or "{}").get("principles") or {}
        except (ValueError, AttributeError):
            continue
        if isinstance(principles, dict):
            out.update({(task_id, str(k)): str(v) for k, v in principles.items()})
        elif isinstance(principles, list):  # tolerate [{id, title}, ...]
            out.update({(task_id, str(d.get("id"))): str(d.get("title", "")) for d in principles
                        if isinstance(d, dict) and d.get("id")})
    return out


def _unavailable(conn) -> list[dict[str, Any]]:
    """Scorers the newest run that mentions them could not run, with the reason."""
    r = S.runs.c
    rows = conn.execute(select(r.run_id, r.started_at, r.scorers_json).order_by(r.started_at, r.run_id)).fetchall()
    latest: dict[str, dict[str, Any]] = {}
    for run_id, _started, raw in rows:
        try:
            entries = json.loads(raw or "[]")
        except ValueError:
            continue
        for e in entries if isinstance(entries, list) else []:
            if isinstance(e, dict) and e.get("id"):
                latest[str(e["id"])] = {"scorer_id": str(e["id"]), "available": bool(e.get("available", True)),
                                        "reason": str(e.get("reason") or ""), "run_id": run_id}
    return [v for _, v in sorted(latest.items()) if not v["available"]]
