"""Validations in the results store: one row per (scorer, scorer-config hash,
metric, suite, time), so a changed judge (model, revision, endpoint, rubric:
anything in its config hash) is "not validated" until validated anew.

Readers (reports, `run`'s closing warning) import this module, SQLAlchemy and
`stats` only: no model code."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Iterable

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text, inspect, select

from cai_bench.redact import redact_obj
from cai_bench.validity.stats import PRETTY, VERDICT_TEXT

metadata = MetaData()

validations = Table(
    "validations",
    metadata,
    Column("validation_id", Integer, primary_key=True, autoincrement=True),
    Column("scorer_id", String(64), nullable=False),
    Column("scorer_hash", String(64), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("suite", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # binary | graded | pairwise
    Column("n_total", Integer, nullable=False),
    Column("n_valid", Integer, nullable=False),
    Column("figure", String(32), nullable=False),  # the primary figure: auc | spearman | pairwise_accuracy
    Column("value", Float),
    Column("lo", Float),
    Column("hi", Float),
    Column("verdict", String(16), nullable=False),  # agrees | chance | inverted | insufficient
    Column("agreement_json", Text, nullable=False),  # every figure, counts, confusion matrix
    Column("config_json", Text, nullable=False, default="{}"),  # scorer config, secrets removed
    Column("caveat", Text),
    Column("seed", Integer),
    Column("seconds", Float),
    Column("created_at", String(40), nullable=False),
)
Index("ix_validations_scorer", validations.c.scorer_id, validations.c.scorer_hash, validations.c.metric)


def _engine(url: str, create: bool):
    from cai_bench.results import make_engine

    engine = make_engine(url, create=create, read_only=not create)  # reading writes nothing
    if create:
        metadata.create_all(engine)
    return engine


def save(url: str, items: Iterable[Any]) -> int:
    """Append validations (`validity.run.Validation`, not imported here: this module
    stays free of model code) in one transaction; returns how many."""
    rows = []
    for v in items:
        a = v.agreement
        f = a.primary_figure
        rows.append(dict(scorer_id=v.scorer_id, scorer_hash=v.config_hash, metric=v.metric, suite=v.suite,
                         kind=a.kind, n_total=a.counts.total, n_valid=a.counts.valid, figure=a.primary,
                         value=f.value, lo=f.lo, hi=f.hi, verdict=a.verdict,
                         agreement_json=json.dumps(a.to_dict(), sort_keys=True),
                         config_json=json.dumps(redact_obj(v.config), sort_keys=True, default=str), caveat=v.caveat or None,
                         seed=v.seed, seconds=v.seconds, created_at=v.created_at))
    if not rows:
        return 0
    engine = _engine(url, create=True)
    try:
        with engine.begin() as conn:
            conn.execute(validations.insert(), rows)
    finally:
        engine.dispose()
    return len(rows)


@dataclass(frozen=True)
class Validity:
    """The latest validation of one metric of one scorer config, for display."""

    scorer_id: str
    scorer_hash: str
    metric: str
    suite: str
    n_total: int
    n_valid: int
    figure: str
    value: float | None
    lo: float | None
    hi: float | None
    verdict: str
    created_at: str
    caveat: str = ""
    flagged_by: "Validity | None" = None  # the latest validation on some suite is at or below chance

    @property
    def flagged(self) -> bool:
        return self.flagged_by is not None

    @property
    def date(self) -> str:
        return self.created_at[:10]

    def cell(self) -> str:
        """Short text for a leaderboard cell: "AUC 0.50 [0.37, 0.63], 56/80 valid, harmful-vs-ethical, 2026-12-01"."""
        name = PRETTY.get(self.figure, self.figure)
        if self.value is None:
            fig = f"{name} n/a"
        elif self.lo is None or self.hi is None:
            fig = f"{name} {self.value:.2f}"
        else:
            fig = f"{name} {self.value:.2f} [{self.lo:.2f}, {self.hi:.2f}]"
        text = f"{fig}, {self.n_valid}/{self.n_total} valid, {self.suite}, {self.date}"
        if self.verdict in ("chance", "inverted"):
            text += f" ({VERDICT_TEXT[self.verdict]})"
        return text

    def warning(self) -> str:
        """The one-line warning printed by `run` and shown on leaderboards."""
        name = PRETTY.get(self.figure, self.figure)
        value = "n/a" if self.value is None else f"{self.value:.2f}"
        ci = "" if self.lo is None or self.hi is None else f" [{self.lo:.2f}, {self.hi:.2f}]"
        return (f"warning: scorer {self.scorer_id}.{self.metric} agrees with human labels at chance level or "
                f"worse ({name} {value}{ci} on {self.suite}, {self.n_valid}/{self.n_total} valid, {self.date}): "
                f"do not trust its ranking")


def latest(url: str, keys: Iterable[tuple[str, str, str]] | None = None) -> dict[tuple[str, str, str], Validity]:
    """{(scorer_id, scorer_hash, metric): latest validation} for the given keys (all when None);
    empty when the store or its validations table does not exist."""
    try:
        engine = _engine(url, create=False)
    except FileNotFoundError:
        return {}
    try:
        with engine.connect() as conn:
            return latest_in(conn, keys)
    finally:
        engine.dispose()


def latest_in(conn: Any, keys: Iterable[tuple[str, str, str]] | None = None) -> dict[tuple[str, str, str], Validity]:
    """`latest` on an open connection (the report loader's)."""
    if not inspect(conn).has_table("validations"):
        return {}
    v = validations.c
    rows = conn.execute(select(v.scorer_id, v.scorer_hash, v.metric, v.suite, v.n_total, v.n_valid, v.figure,
                               v.value, v.lo, v.hi, v.verdict, v.created_at, v.caveat, v.validation_id)
                        .order_by(v.created_at, v.validation_id)).fetchall()
    wanted = set(keys) if keys is not None else None
    newest: dict[tuple[str, str, str], Validity] = {}
    per_suite: dict[tuple[str, str, str, str], Validity] = {}
    for r in rows:  # oldest first: later rows replace earlier ones
        key = (r.scorer_id, r.scorer_hash, r.metric)
        if wanted is not None and key not in wanted:
            continue
        newest[key] = per_suite[(*key, r.suite)] = Validity(
            r.scorer_id, r.scorer_hash, r.metric, r.suite, r.n_total, r.n_valid, r.figure, r.value, r.lo, r.hi,
            r.verdict, r.created_at, r.caveat or "")
    flagged: dict[tuple[str, str, str], Validity] = {}
    for (sid, h, m, _suite), val in per_suite.items():
        if "[culture=" in val.suite:  # one culture's validation flags that culture's cells only (latest_per_culture)
            continue
        if val.verdict in ("chance", "inverted"):
            prev = flagged.get((sid, h, m))
            if prev is None or prev.created_at <= val.created_at:
                flagged[(sid, h, m)] = val
    return {k: replace(val, flagged_by=flagged.get(k)) for k, val in newest.items()}


def latest_per_culture(url: str, keys: Iterable[tuple[str, str, str]] | None = None,
                       ) -> dict[tuple[str, str, str, str], Validity]:
    """{(scorer_id, scorer_hash, metric, culture): latest validation for that culture}: the
    validations on a culture's data (stored as `suite[culture=XX]...`), each flagged when a
    validation for that culture was at chance level or worse."""
    import re

    culture_re = re.compile(r"\[culture=([^\]]+)\]")
    try:
        engine = _engine(url, create=False)
    except FileNotFoundError:
        return {}
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("validations"):
                return {}
            v = validations.c
            rows = conn.execute(select(v.scorer_id, v.scorer_hash, v.metric, v.suite, v.n_total, v.n_valid, v.figure,
                                       v.value, v.lo, v.hi, v.verdict, v.created_at, v.caveat)
                                .where(v.suite.like("%[culture=%")).order_by(v.created_at, v.validation_id)).fetchall()
    finally:
        engine.dispose()
    wanted = set(keys) if keys is not None else None
    newest: dict[tuple[str, str, str, str], Validity] = {}
    per_suite: dict[tuple[tuple[str, str, str, str], str], Validity] = {}
    for r in rows:  # oldest first: later rows replace earlier ones
        m = culture_re.search(r.suite)
        if m is None or (wanted is not None and (r.scorer_id, r.scorer_hash, r.metric) not in wanted):
            continue
        key = (r.scorer_id, r.scorer_hash, r.metric, m.group(1))
        suite = culture_re.sub("", r.suite).split("[")[0]  # a sample of a suite is that suite
        newest[key] = per_suite[(key, suite)] = Validity(
            r.scorer_id, r.scorer_hash, r.metric, r.suite, r.n_total, r.n_valid, r.figure, r.value, r.lo, r.hi,
            r.verdict, r.created_at, r.caveat or "")
    flagged = {key: val for (key, _), val in sorted(per_suite.items(), key=lambda kv: kv[1].created_at)
               if val.verdict in ("chance", "inverted")}
    return {k: replace(val, flagged_by=flagged.get(k)) for k, val in newest.items()}
