"""Read the results store into one long DataFrame (one row per score row).

Which data (a leaderboard compares like with like, by construction):
- only answers to the current version of each prompt (input hash of the prompt
  row marked current) and scores made from it (its content hash);
- per task, ONE generation config for every checkpoint: the one shared by the
  most checkpoints of that task, the latest among equals;
- per scorer, ONE scorer config for every (checkpoint, task): the one covering
  the most of them, the latest among equals.
Ties break on the hash string, so the choice never depends on row order. What
another config holds is left out and listed with the reason (`StoreExtras.left_out`);
a checkpoint with no results under the chosen config shows as missing.

Each row carries its metric's declaration (direction, lo, hi, `in_composite`,
`role`: the scorer's, with what the row's task.yaml declares for that metric in
its `metrics:` put over it) and `StoreExtras.task_analyses` the analyses each task
asked for, so the reports decide from data, never from a scorer or task id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import and_, select

from cai_bench.errors import UserError
from cai_bench.results import schema as S
from cai_bench.results.engine import open_engine
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
    # task_id -> {scorer.metric: {role?, composite?}}: what each task.yaml declares for metrics on its rows
    task_metrics: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    configs: list[dict[str, Any]] = field(default_factory=list)  # [{kind, name, hash, settings, covered, of}]
    left_out: list[dict[str, Any]] = field(default_factory=list)  # [{checkpoint, task_id, what, hash, reason}]
    principle_coverage: list[dict[str, Any]] = field(default_factory=list)  # [{task_id, principle_id, n, of}]
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # [{label, fingerprint, kind, engine}]


@dataclass
class LateDeclarations:
    """What today's scorers and task.yaml files declare for rows a store holds without
    declarations (stored before they existed): `harness.declarations.late_declarations`
    reads them, the loader applies them in memory. A report never writes the store."""

    metrics: dict[tuple[str, str], tuple[bool, str | None]] = field(default_factory=dict)  # -> (composite, role)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # task_id -> {analyses, metrics}


def _engine_name(settings: dict[str, Any], kind: str | None) -> str:
    """Who produced a checkpoint's answers: the generation engine of local weights
    (hf: lm-eval/transformers, vllm), or the server of a served checkpoint."""
    if kind in ("openai", "ollama"):
        return f"{kind} server"
    return str(settings.get("engine", "hf"))


def open_for_reading(store_url: str):  # noqa: ANN201 - SQLAlchemy Engine
    """The store's engine for reading; a missing store is one line with the fix."""
    try:
        return open_engine(store_url, create=False, read_only=True)
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


def _has_tables(engine) -> bool:
    from sqlalchemy import inspect

    return inspect(engine).has_table("scores")


def load_results(store_url: str) -> pd.DataFrame:
    """The store's latest results as a long DataFrame with the `COLUMNS` columns
    (empty, with those columns, when the store holds no scores)."""
    df, _ = load_results_with_extras(store_url)
    return df


def load_results_with_extras(store_url: str, late: LateDeclarations | None = None,
                             ) -> tuple[pd.DataFrame, StoreExtras]:
    """The results frame and what the report needs besides it; `late` fills declarations
    missing from older rows (in memory)."""
    engine = open_for_reading(store_url)
    try:
        if not _has_tables(engine):
            return pd.DataFrame(columns=COLUMNS), StoreExtras()
        with engine.connect() as conn:
            return _load(conn, late or LateDeclarations())
    finally:
        engine.dispose()


def _current_generations(conn) -> pd.DataFrame:
    """Generations answered from the current version of their prompt, with that
    version's content hash."""
    g, p = S.generations.c, S.prompts.c
    join = S.generations.join(S.prompts, and_(p.task_id == g.task_id, p.prompt_id == g.prompt_id,
                                              p.input_hash == g.input_hash, p.current == 1))
    return _frame(
        conn,
        select(g.generation_id, g.fingerprint, g.task_id, g.prompt_id, g.gen_hash, g.response, g.created_at,
               p.content_hash).select_from(join),
        ["generation_id", "fingerprint", "task_id", "prompt_id", "gen_hash", "response", "created_at",
         "content_hash"],
    )


def _choose(units: pd.DataFrame, group: list[str], unit: list[str], choice: str) -> pd.DataFrame:
    """Per `group`, the `choice` value covering the most `unit`s, newest among equals,
    then the largest hash: rows of `units` (group + unit + choice + newest)."""
    stats = (units.groupby([*group, choice], sort=False)
             .agg(covered=(unit[0], "size"), newest=("newest", "max")).reset_index())
    ordered = stats.sort_values([*group, "covered", "newest", choice], kind="mergesort")
    return ordered.drop_duplicates(group, keep="last")[[*group, choice, "covered"]]


def _gen_settings(conn) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for gh, raw in conn.execute(select(S.gen_configs.c.gen_hash, S.gen_configs.c.config_json)).all():
        try:
            out[gh] = json.loads(raw)
        except ValueError:
            out[gh] = {}
    return out


def _scorer_settings(conn) -> dict[tuple[str, str], dict[str, Any]]:
    m = S.scorer_metrics.c
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for sid, sh, raw in conn.execute(select(m.scorer_id, m.scorer_hash, m.config_json)).all():
        try:
            out[(sid, sh)] = json.loads(raw or "{}")
        except ValueError:
            out[(sid, sh)] = {}
    return out


def _select_configs(conn, gens: pd.DataFrame, sc: pd.DataFrame,
                    extras: StoreExtras) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep one generation config per task and one scorer config per scorer;
    record the choice and what was left out in `extras`."""
    ck_rows = conn.execute(select(S.checkpoints.c.fingerprint, S.checkpoints.c.label, S.checkpoints.c.kind)).all()
    labels = {fp: label for fp, label, _ in ck_rows}
    kinds = {fp: kind for fp, _, kind in ck_rows}
    unit = ["fingerprint", "task_id"]
    gen_settings = _gen_settings(conn)
    # Checkpoints of a task are compared under one sampling (the generation settings
    # but the engine): a vLLM-served checkpoint ranks beside an HF or an API one;
    # each checkpoint's answers come from one engine (its newest), named per checkpoint.
    sampling = {h: (json.dumps({k: v for k, v in gen_settings[h].items() if k != "engine"}, sort_keys=True)
                    if gen_settings.get(h) else h) for h in gens["gen_hash"].unique()}
    gens = gens.assign(sampling=gens["gen_hash"].map(sampling))
    per = gens.groupby([*unit, "sampling", "gen_hash"], sort=False)["created_at"].max().rename("newest").reset_index()
    per_s = per.groupby([*unit, "sampling"], sort=False)["newest"].max().reset_index()
    chosen = _choose(per_s, ["task_id"], ["fingerprint"], "sampling")
    n_ckpt = per.groupby("task_id")["fingerprint"].nunique()
    pick = dict(zip(chosen["task_id"], chosen["sampling"]))
    # per checkpoint x task under the chosen sampling: the engine answered last
    in_pick = per[[pick.get(t) == x for t, x in zip(per["task_id"], per["sampling"])]]
    used = in_pick.sort_values("newest", kind="mergesort").drop_duplicates(unit, keep="last")
    use = {(f, t): h for f, t, h in zip(used["fingerprint"], used["task_id"], used["gen_hash"])}
    for row in chosen.itertuples():
        hashes = sorted({h for (f, t), h in use.items() if t == row.task_id})
        settings = dict(gen_settings.get(hashes[0], {})) if hashes else {}
        engines = sorted({_engine_name(gen_settings.get(h, {}), kinds.get(f)) for (f, t), h in use.items()
                          if t == row.task_id})
        settings.pop("engine", None)
        extras.configs.append({"kind": "generation", "name": row.task_id, "hash": ", ".join(hashes),
                               "settings": settings, "covered": int(row.covered),
                               "of": int(n_ckpt[row.task_id]), "unit": "checkpoints", "engine": ", ".join(engines)})
    have = set(zip(per["fingerprint"], per["task_id"], per["gen_hash"]))
    for fp, task in sorted({(f, t) for f, t, _ in have}):
        mine = use.get((fp, task))
        others = sorted(h for f, t, h in have if f == fp and t == task and h != mine)
        if others:
            present = mine is not None
            extras.left_out.append({
                "checkpoint": labels.get(fp, fp[:12]), "task_id": task, "what": "generation config",
                "hash": ", ".join(others), "missing": not present,
                "reason": ((f"answers under other generation settings, not compared; this leaderboard uses "
                            f"{mine} (the sampling shared by the most checkpoints)") if all(
                               sampling.get(h) != pick[task] for h in others) else
                           f"answers of another engine under the same sampling; this leaderboard uses {mine} "
                           "(the newest)")
                + ("" if present else "; no answers under the chosen sampling: missing here")})
    gens = gens[[use.get((f, t)) == h for f, t, h in zip(gens["fingerprint"], gens["task_id"], gens["gen_hash"])]]
    gens = gens.drop(columns=["sampling"])
    engines_of: dict[str, set[str]] = {}
    for (f, _t), h in use.items():
        engines_of.setdefault(f, set()).add(_engine_name(gen_settings.get(h, {}), kinds.get(f)))
    extras.checkpoints = [{"label": labels.get(f, f[:12]), "fingerprint": f, "kind": kinds.get(f) or "",
                           "engine": ", ".join(sorted(e))} for f, e in sorted(
                               engines_of.items(), key=lambda kv: (labels.get(kv[0], kv[0]), kv[0]))]

    sc = sc.merge(gens[["generation_id", *unit, "content_hash"]], on=["generation_id", "content_hash"])
    per = (sc.groupby([*unit, "scorer_id", "scorer_hash"], sort=False)["score_created_at"].max()
           .rename("newest").reset_index())
    per["unit"] = per["fingerprint"] + "\0" + per["task_id"]
    chosen = _choose(per, ["scorer_id"], ["unit"], "scorer_hash")
    scorer_settings = _scorer_settings(conn)
    n_units = per.groupby("scorer_id")["unit"].nunique()
    for row in chosen.itertuples():
        settings = scorer_settings.get((row.scorer_id, row.scorer_hash), {})
        extras.configs.append({"kind": "scorer", "name": row.scorer_id, "hash": row.scorer_hash,
                               "settings": settings.get("identity", settings), "covered": int(row.covered),
                               "of": int(n_units[row.scorer_id]), "unit": "checkpoint x task"})
    pick_s = dict(zip(chosen["scorer_id"], chosen["scorer_hash"]))
    have_s = set(zip(per["fingerprint"], per["task_id"], per["scorer_id"], per["scorer_hash"]))
    for fp, task, sid in sorted({(f, t, s_) for f, t, s_, _ in have_s}):
        others = sorted(h for f, t, s_, h in have_s if (f, t, s_) == (fp, task, sid) and h != pick_s[sid])
        if others:
            present = (fp, task, sid, pick_s[sid]) in have_s
            extras.left_out.append({
                "checkpoint": labels.get(fp, fp[:12]), "task_id": task, "what": f"scorer {sid}",
                "hash": ", ".join(others), "missing": not present,
                "reason": f"scores under other {sid} settings, not compared; this leaderboard uses {pick_s[sid]}"
                + ("" if present else f"; no scores under {pick_s[sid]}: missing here")})
    sc = sc[[pick_s.get(a) == b for a, b in zip(sc["scorer_id"], sc["scorer_hash"])]]
    return gens, sc.drop(columns=[*unit, "content_hash"])


def _coverage(conn, gens: pd.DataFrame) -> list[dict[str, Any]]:
    """Per task and principle: prompts in the report of the task's prompts. A run stores
    only the prompts it answers, so "of" comes from the task row's `prompts_per_principle`
    (the whole task's counts) where it has one; older rows: the stored current prompts."""
    p, t = S.prompts.c, S.tasks.c
    cur = _frame(conn, select(p.task_id, p.prompt_id, p.principle_id).where(p.current == 1),
                 ["task_id", "prompt_id", "principle_id"])
    if cur.empty:
        return []
    used = set(zip(gens["task_id"], gens["prompt_id"]))
    cur["used"] = [(t_, q) in used for t_, q in zip(cur["task_id"], cur["prompt_id"])]
    cur["principle_id"] = cur["principle_id"].fillna("(none)")
    cur = cur[cur["task_id"].isin(set(gens["task_id"]))]
    agg = cur.groupby(["task_id", "principle_id"], sort=True)["used"].agg(["sum", "size"]).reset_index()
    counts = {(r.task_id, r.principle_id): [int(r.sum), int(r.size)] for r in agg.itertuples()}
    for task_id, raw in conn.execute(select(t.task_id, t.metadata_json)
                                     .where(t.task_id.in_(sorted(set(gens["task_id"]))))).all():
        try:
            sizes = json.loads(raw or "{}").get("prompts_per_principle")
        except (ValueError, AttributeError):
            sizes = None
        if not isinstance(sizes, dict):
            continue
        for key in [k for k in counts if k[0] == task_id and k[1] not in sizes]:
            del counts[key]  # a principle the task no longer has
        for principle, of in sizes.items():
            counts.setdefault((task_id, principle), [0, 0])[1] = int(of)
    return [{"task_id": k[0], "principle_id": k[1], "n": n, "of": of} for k, (n, of) in sorted(counts.items())]


def _load(conn, late: LateDeclarations) -> tuple[pd.DataFrame, StoreExtras]:
    s = S.scores.c
    gens = _current_generations(conn)
    sc = _frame(
        conn,
        select(s.generation_id, s.scorer_id, s.scorer_hash, s.content_hash, s.metric, s.value, s.status, s.error,
               s.detail_json, s.created_at),
        ["generation_id", "scorer_id", "scorer_hash", "content_hash", "metric", "value", "status", "error",
         "detail_json",
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

    gens, sc = _select_configs(conn, gens, sc, extras)
    if sc.empty:
        return pd.DataFrame(columns=COLUMNS), extras
    extras.principle_coverage = _coverage(conn, gens)
    latest = max(str(gens["created_at"].max()), str(sc["score_created_at"].max()))
    sc = sc.drop(columns=["score_created_at"])
    gens = gens.drop(columns=["content_hash"])

    df = sc.merge(gens.drop(columns=["created_at"]), on="generation_id")
    c, t, p, m = S.checkpoints.c, S.tasks.c, S.prompts.c, S.scorer_metrics.c
    ckpts = _frame(conn, select(c.fingerprint, c.label, c.spec), ["fingerprint", "label", "spec"])
    tasks = _frame(conn, select(t.task_id, t.constitution_id, t.culture, t.metadata_json),
                   ["task_id", "constitution_id", "culture", "metadata_json"])
    prompts = _frame(
        conn,
        select(p.task_id, p.prompt_id, p.principle_id, p.category, p.expect, p.prompt, p.reference)
        .where(p.current == 1),
        ["task_id", "prompt_id", "principle_id", "category", "expect", "prompt", "reference"],
    )
    metrics = _frame(conn, select(m.scorer_id, m.scorer_hash, m.metric, m.direction, m.lo, m.hi, m.composite,
                                  m.role),
                     ["scorer_id", "scorer_hash", "metric", "direction", "lo", "hi", "in_composite", "role"])
    tasks, metrics = _declare_late(tasks, metrics, late)
    extras.principle_titles = _titles(tasks)
    extras.task_analyses, extras.task_metrics = _task_declarations(tasks)
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
    df = _apply_task_metrics(df, extras.task_metrics)
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


def _declare_late(tasks: pd.DataFrame, metrics: pd.DataFrame,
                  late: LateDeclarations) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows stored without declarations get `late`'s (metrics: composite and role both NULL;
    tasks: metadata without `analyses`)."""
    if late.metrics and not metrics.empty:
        undeclared = metrics["in_composite"].isna() & metrics["role"].isna()
        found = [late.metrics.get((str(a), str(b))) if u else None
                 for a, b, u in zip(metrics["scorer_id"], metrics["metric"], undeclared)]
        metrics = metrics.copy()
        metrics["in_composite"] = [int(f[0]) if f else v for f, v in zip(found, metrics["in_composite"])]
        metrics["role"] = [f[1] if f else v for f, v in zip(found, metrics["role"])]
    if late.tasks and not tasks.empty:
        tasks = tasks.copy()
        patched = []
        for task_id, raw in zip(tasks["task_id"], tasks["metadata_json"]):
            try:
                meta = json.loads(raw or "{}")
            except ValueError:
                meta = None
            if isinstance(meta, dict) and "analyses" not in meta and str(task_id) in late.tasks:
                raw = json.dumps({**meta, **late.tasks[str(task_id)]}, sort_keys=True)
            patched.append(raw)
        tasks["metadata_json"] = pd.Series(patched, index=tasks.index, dtype=object)
    return tasks, metrics


def _task_declarations(tasks: pd.DataFrame) -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, dict]]]:
    """Per task_id, the analyses its task.yaml asked for (`analyses: [refusal]`) and
    what it declared for scorer metrics on its rows (`metrics: {judge.refused: {role: refusal}}`)."""
    analyses: dict[str, tuple[str, ...]] = {}
    metrics: dict[str, dict[str, dict]] = {}
    for task_id, raw in zip(tasks["task_id"], tasks["metadata_json"]):
        try:
            meta = json.loads(raw or "{}")
        except ValueError:
            continue
        if not isinstance(meta, dict):
            continue
        found = meta.get("analyses") or []
        if isinstance(found, list) and found:
            analyses[str(task_id)] = tuple(str(a) for a in found)
        declared = meta.get("metrics") or {}
        if isinstance(declared, dict) and declared:
            metrics[str(task_id)] = {str(k): dict(v) for k, v in declared.items() if isinstance(v, dict)}
    return analyses, metrics


def _apply_task_metrics(df: pd.DataFrame, task_metrics: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """Put each task's metric declarations over its scorer's, on that task's rows only."""
    if not task_metrics or df.empty:
        return df
    key = df["scorer_id"].astype(str) + "." + df["metric"].astype(str)
    for task_id, declared in task_metrics.items():
        on_task = df["task_id"] == task_id
        for metric_key, decl in declared.items():
            rows = on_task & (key == metric_key)
            if not rows.any():
                continue
            if decl.get("role") is not None:
                df.loc[rows, "role"] = str(decl["role"])
            if decl.get("composite") is not None:
                df.loc[rows, "in_composite"] = bool(decl["composite"])
    return df


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
