"""Scorer validity next to the scores: for every metric a leaderboard shows, the
latest validation of the same scorer config (suite, n, AUC/Spearman/pairwise
accuracy with CI, valid fraction, date) or "not validated", and a flag on
metrics whose validation is at chance level or worse. Reads the store only."""

from __future__ import annotations

from typing import Any

import pandas as pd

from cai_bench.reports import tables

NOT_VALIDATED = "not validated"
FLAG = "⚠"
UNVALIDATED_MARK = "†"  # a leaderboard header: the metric was not validated for this culture
CULTURE_COLUMNS = ["key", "scorer_id", "scorer_hash", "metric", "culture", "status", "text"]
COLUMNS = ["key", "scorer_id", "scorer_hash", "metric", "text", "flagged", "warning"]
# the figures behind `text`, for validity.csv (empty when the metric was never validated)
FIGURES = ["suite", "figure", "value", "ci_low", "ci_high", "n_valid", "n_total", "verdict", "validated_at"]


def store_keys(df: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(scorer_id, scorer_hash, metric) of every metric in the results frame."""
    if df.empty:
        return []
    keys = df[["scorer_id", "scorer_hash", "metric"]].drop_duplicates()
    return [tuple(map(str, k)) for k in keys.itertuples(index=False)]  # type: ignore[misc]


def load_validity(store_url: str, df: pd.DataFrame) -> dict[tuple[str, str, str], Any]:
    """The latest validation of every (scorer, config hash, metric) in `df`."""
    from cai_bench.validity.store import latest

    return latest(store_url, store_keys(df))


def validity_frame(df: pd.DataFrame, latest: dict[tuple[str, str, str], Any]) -> pd.DataFrame:
    """One row per (metric key, scorer config) in `df`, validated or not."""
    rows = []
    for sid, h, metric in sorted(store_keys(df)):
        v = latest.get((sid, h, metric))
        flagged = v is not None and v.flagged
        figures = dict.fromkeys(FIGURES)
        if v is not None:
            figures.update(suite=v.suite, figure=v.figure, value=v.value, ci_low=v.lo, ci_high=v.hi,
                           n_valid=v.n_valid, n_total=v.n_total, verdict=v.verdict, validated_at=v.created_at)
        rows.append({"key": f"{sid}.{metric}", "scorer_id": sid, "scorer_hash": h, "metric": metric,
                     "text": v.cell() if v is not None else NOT_VALIDATED, "flagged": flagged,
                     "warning": v.flagged_by.warning() if flagged else "", **figures})
    return pd.DataFrame(rows, columns=COLUMNS + FIGURES)


def validity_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """validity.csv: one row per metric of the leaderboards, its scorer config and the figures of
    its latest validation ("not validated" in `validity` otherwise); the CSV twin of the report's table."""
    out = frame.rename(columns={"key": "metric_key", "text": "validity", "flagged": "chance_level"})
    return out.drop(columns=["warning"]).reindex(
        columns=["metric_key", "scorer_id", "scorer_hash", "metric", "validity", "chance_level", *FIGURES])


def flagged_keys(frame: pd.DataFrame) -> frozenset[str]:
    return frozenset(frame.loc[frame["flagged"].astype(bool), "key"]) if not frame.empty else frozenset()


def validity_table(frame: pd.DataFrame, keys: list[str] | None = None) -> tables.Table:
    """metric | scorer config | validity, for the metric keys of one leaderboard (all when None)."""
    part = frame if keys is None else for_keys(frame, keys)
    rows = [[tables.cell(f"{r['key']} {FLAG}" if r["flagged"] else r["key"]), tables.cell(r["scorer_hash"][:12]),
             tables.cell(r["text"])] for r in part.to_dict("records")]
    return tables.Table(["metric", "scorer config", "validity (latest validation)"], rows)


def for_keys(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame[frame["key"].isin(keys)] if not frame.empty else frame


def warnings(frame: pd.DataFrame) -> list[str]:
    return [w for w in dict.fromkeys(frame["warning"]) if w] if not frame.empty else []


def board_keys(board: pd.DataFrame, group: str) -> list[str]:
    part = board[board["group"] == group]
    return [k for k in tables.metric_keys(board) if part[k].notna().any()]


def run_warnings(store_url: str, scorers: list[tuple[str, str]]) -> list[str]:
    """The chance-level warnings for the (scorer id, config hash) pairs a run used."""
    from cai_bench.validity.store import latest

    wanted = set(scorers)
    found = [v for k, v in sorted(latest(store_url).items()) if (k[0], k[1]) in wanted and v.flagged]
    return list(dict.fromkeys(v.flagged_by.warning() for v in found))


# ---------------------------------------------------------------- per culture

def load_culture_validity(store_url: str, df: pd.DataFrame) -> dict[tuple[str, str, str, str], Any]:
    """The latest validation for each culture of every (scorer, config hash, metric) in `df`."""
    from cai_bench.validity.store import latest_per_culture

    return latest_per_culture(store_url, store_keys(df))


def culture_frame(df: pd.DataFrame, per_culture: dict[tuple[str, str, str, str], Any]) -> pd.DataFrame:
    """One row per (metric, scorer config, culture) the results hold: validated for that
    culture, at chance for it ("chance"), or "not validated" for it."""
    if df.empty:
        return pd.DataFrame(columns=CULTURE_COLUMNS)
    seen = df[["scorer_id", "scorer_hash", "metric", "culture"]].drop_duplicates()
    rows = []
    for sid, h, metric, culture in sorted(tuple(map(str, r)) for r in seen.itertuples(index=False)):
        v = per_culture.get((sid, h, metric, culture))
        # too few valid verdicts to judge is no validation either
        status = ("chance" if v is not None and v.flagged else
                  "not validated" if v is None or v.verdict == "insufficient" else "validated")
        rows.append({"key": f"{sid}.{metric}", "scorer_id": sid, "scorer_hash": h, "metric": metric,
                     "culture": culture, "status": status,
                     "text": v.cell() if v is not None else f"{NOT_VALIDATED} for {culture}"})
    return pd.DataFrame(rows, columns=CULTURE_COLUMNS)


def culture_marks(frame: pd.DataFrame, culture: str) -> tuple[frozenset[str], frozenset[str]]:
    """(metric keys at chance for `culture`, metric keys not validated for it)."""
    if frame.empty:
        return frozenset(), frozenset()
    part = frame[frame["culture"] == culture]
    return (frozenset(part.loc[part["status"] == "chance", "key"]),
            frozenset(part.loc[part["status"] == "not validated", "key"]))


def culture_note(frame: pd.DataFrame, culture: str) -> str:
    """The line under a culture's leaderboard that explains its marks."""
    chance, unvalidated = culture_marks(frame, culture)
    parts = []
    if chance:
        parts.append(f"{FLAG} at chance level or worse for {culture}: {', '.join(sorted(chance))}")
    if unvalidated:
        parts.append(f"{UNVALIDATED_MARK} not validated for {culture}: {', '.join(sorted(unvalidated))} "
                     f"(cai-bench scorers validate SCORER --suite redteam-pairs --by culture)")
    return "; ".join(parts)
