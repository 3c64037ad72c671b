"""A judge panel's agreement next to its score: Krippendorff's alpha over the
members' stored verdicts (`harness.scorers.panel`), nominal for yes/no metrics
and interval for scores, with a bootstrap CI over the rows it was computed from.

Alpha itself comes from the maintained `krippendorff` package; this module
arranges the verdicts (members x rows, missing where a member gave no valid
verdict) and resamples rows with the report's seed. Alpha is undefined (NaN)
where fewer than two rows carry two verdicts or all verdicts are one value.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from cai_bench.reports.statistics import rng_for

COLUMNS = ["key", "scorer_id", "scorer_hash", "metric", "group", "level", "members", "n_rows", "n_pairable",
           "score", "alpha", "lo", "hi"]
UNIT = ["fingerprint", "task_id", "prompt_id", "gen_hash", "scorer_id", "scorer_hash", "metric"]


def alpha(data: np.ndarray, level: str) -> float:
    """Krippendorff's alpha of `data` (raters x units, NaN = no verdict); NaN where undefined."""
    import krippendorff

    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or np.sum(np.sum(~np.isnan(data), axis=0) >= 2) < 1:
        return float("nan")
    values = data[~np.isnan(data)]
    if np.unique(values).size < 2:
        return float("nan")
    try:
        return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))
    except (ValueError, ZeroDivisionError):
        return float("nan")


def alpha_ci(data: np.ndarray, level: str, rng: np.random.Generator, n_boot: int,
             confidence: float = 0.95) -> tuple[float, float, float]:
    """(alpha, lo, hi): percentile bootstrap over units (columns); resamples where alpha
    is undefined are left out, and with fewer than half defined the CI is NaN."""
    data = np.asarray(data, dtype=float)
    a = alpha(data, level)
    n = data.shape[1] if data.ndim == 2 else 0
    if np.isnan(a) or n < 2:
        return a, float("nan"), float("nan")
    boots = np.array([alpha(data[:, rng.integers(0, n, size=n)], level) for _ in range(n_boot)])
    boots = boots[~np.isnan(boots)]
    if boots.size < n_boot / 2:
        return a, float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(boots, [tail, 100 - tail])
    return a, float(lo), float(hi)


def verdict_matrix(details: list[dict[str, Any]]) -> tuple[list[str], np.ndarray]:
    """Members and their values (members x rows) from rows' `detail["panel"]`; NaN for a
    member without a valid verdict on a row."""
    members: list[str] = []
    for d in details:
        for m in d.get("members", []):
            if m.get("member") not in members:
                members.append(m.get("member"))
    out = np.full((len(members), len(details)), np.nan)
    index = {m: i for i, m in enumerate(members)}
    for j, d in enumerate(details):
        for m in d.get("members", []):
            if m.get("status") == "ok" and m.get("value") is not None:
                out[index[m["member"]], j] = float(m["value"])
    return members, out


def load_panel_rows(store_url: str, df: pd.DataFrame) -> pd.DataFrame:
    """The panel rows (with their members' verdicts) among the results `df` shows."""
    from sqlalchemy import select

    from cai_bench.results import schema as S
    from cai_bench.results.load import _has_tables, open_for_reading

    cols = [*UNIT, "value", "status", "detail"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    s, g = S.scores.c, S.generations.c
    engine = open_for_reading(store_url)
    try:
        if not _has_tables(engine):
            return pd.DataFrame(columns=cols)
        with engine.connect() as conn:
            rows = conn.execute(
                select(g.fingerprint, g.task_id, g.prompt_id, g.gen_hash, s.scorer_id, s.scorer_hash, s.metric,
                       s.value, s.status, s.detail_json)
                .select_from(S.scores.join(S.generations, g.generation_id == s.generation_id))
                .where(s.detail_json.like('%"panel"%'))).all()
    finally:
        engine.dispose()
    found = []
    for *unit, value, status, raw in rows:
        try:
            detail = (json.loads(raw) or {}).get("panel")
        except ValueError:
            continue
        if isinstance(detail, dict):
            found.append([*unit, value, status, detail])
    out = pd.DataFrame(found, columns=cols)
    shown = df[UNIT].drop_duplicates()
    return out.merge(shown, on=UNIT, how="inner") if not out.empty else out


def agreement_frame(panel_rows: pd.DataFrame, df: pd.DataFrame, *, seed: int = 0,
                    n_boot: int = 1000) -> pd.DataFrame:
    """Per panel metric, over all rows and per culture: members, rows, the panel's mean
    score and alpha with its CI."""
    if panel_rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    cultures = df.drop_duplicates("task_id").set_index("task_id")["culture"]
    rows = panel_rows.assign(culture=panel_rows["task_id"].map(cultures))
    out = []
    for (sid, h, metric), part in rows.groupby(["scorer_id", "scorer_hash", "metric"], sort=True):
        binary = all(d.get("aggregate") == "majority" for d in part["detail"])
        level = "nominal" if binary else "interval"
        groups = [("all", part)] + [(str(c), p) for c, p in part.groupby("culture", sort=True)]
        for group, p in groups:
            members, data = verdict_matrix(list(p["detail"]))
            a, lo, hi = alpha_ci(data, level, rng_for(seed, "alpha", sid, h, metric, group), n_boot)
            ok = p.loc[p["status"] == "ok", "value"].astype(float)
            out.append({"key": f"{sid}.{metric}", "scorer_id": sid, "scorer_hash": h, "metric": metric,
                        "group": group, "level": level, "members": ", ".join(members), "n_rows": len(p),
                        "n_pairable": int(np.sum(np.sum(~np.isnan(data), axis=0) >= 2)),
                        "score": float(ok.mean()) if len(ok) else float("nan"), "alpha": a, "lo": lo, "hi": hi})
    return pd.DataFrame(out, columns=COLUMNS)


def agreement_table(frame: pd.DataFrame) -> Any:
    """metric | culture | panel score | alpha [CI] | rows | members, for the report."""
    from cai_bench.reports import tables

    def fmt(x: float) -> str:
        return "n/a" if x is None or np.isnan(x) else f"{x:.3f}"

    rows = [[tables.cell(r["key"]), tables.cell(r["group"]), tables.cell(fmt(r["score"])),
             tables.cell(f"{fmt(r['alpha'])} [{fmt(r['lo'])}, {fmt(r['hi'])}] ({r['level']})"),
             tables.cell(f"{r['n_pairable']} of {r['n_rows']}"), tables.cell(r["members"])]
            for r in frame.to_dict("records")]
    return tables.Table(["metric", "culture", "panel score", "Krippendorff's alpha [95% CI]",
                         "rows with 2+ verdicts", "members"], rows)


def self_grading_names(configs: list[dict[str, Any]]) -> list[str]:
    """`scorer (hash)` of each compared scorer config that was allowed to grade its own model."""
    def allowed(settings: dict[str, Any]) -> bool:  # the stored identity, or plain settings
        inner = settings.get("settings") if isinstance(settings.get("settings"), dict) else settings
        return bool(inner.get("allow_self_grading"))

    return [f"{c['name']} ({str(c['hash'])[:12]})" for c in configs
            if c.get("kind") == "scorer" and allowed(c.get("settings") or {})]


__all__ = ["self_grading_names", "agreement_frame", "agreement_table", "alpha", "alpha_ci", "load_panel_rows", "verdict_matrix"]
