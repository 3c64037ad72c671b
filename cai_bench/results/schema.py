"""The results store's tables (SQLAlchemy Core), one definition for SQLite and
PostgreSQL. Writers (harness) and readers (reports) share it; no torch.

Identity (docs/run.md, "What a result is keyed by"): a generation is keyed by
(checkpoint fingerprint, task, prompt id, prompt input hash, generation-config
hash), a score by (generation, scorer, scorer-config hash, prompt content hash,
metric). `prompts` keeps every version of a prompt; `current` marks the one the
last run registered, and only rows made from current versions are reported.

Schema version 3 (`meta`; `loops` and `experiments` were added within it: opening an older store creates them); older versions (1: no `meta` table; 2:
`generation_errors` without the input hash) are migrated by
`migrations.ensure_schema`. Integer ids use AUTOINCREMENT on SQLite (sequences
on PostgreSQL), so an id is never handed out twice, even after deletions.

Scores are long-format: one row per (generation, scorer, scorer-config hash,
content hash, metric). `status` keeps "not applicable" and "unscored" apart from real values:
    ok        value is a number
    na        the metric does not apply (e.g. no reference answer); value NULL
    unscored  the scorer ran but could not produce a verdict (unparseable); value NULL
    error     the scorer failed for this row (HTTP error after retries...); value NULL, error set
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 3
LEGACY = "legacy"  # content/input hash of rows migrated from a schema that kept none
metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("started_at", String(40), nullable=False),  # ISO 8601 UTC
    Column("finished_at", String(40)),
    Column("status", String(16), nullable=False),  # running | finished | failed | interrupted
    Column("seed", Integer),
    Column("config_json", Text, nullable=False),  # the resolved run config (no secrets)
    Column("scorers_json", Text, nullable=False, default="[]"),  # [{id, config_hash, available, reason}]
    Column("cai_bench_version", String(32)),
    Column("heartbeat_at", String(40)),  # refreshed while the run lives; stale + dead pid = interrupted
    Column("pid", Integer),
    Column("host", String(255)),
    Column("sample_json", Text),  # {task_id: {mode, limit, seed, n, of, per_principle, prompt_ids}}
)

gen_configs = Table(
    "gen_configs",
    metadata,
    Column("gen_hash", String(64), primary_key=True),
    Column("config_json", Text, nullable=False),  # the resolved sampling the hash was made from
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("spec", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # hf | peft | openai | ollama
    Column("label", Text, nullable=False),
    Column("metadata_json", Text, nullable=False, default="{}"),
)

run_checkpoints = Table(
    "run_checkpoints",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.run_id"), primary_key=True),
    Column("fingerprint", String(64), ForeignKey("checkpoints.fingerprint"), primary_key=True),
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(128), primary_key=True),
    Column("constitution_id", String(128), nullable=False),
    Column("culture", Text, nullable=False),
    Column("n_prompts", Integer, nullable=False),
    Column("metadata_json", Text, nullable=False, default="{}"),  # principle titles etc.
)

prompts = Table(
    "prompts",
    metadata,
    Column("task_id", String(128), ForeignKey("tasks.task_id"), primary_key=True),
    Column("prompt_id", String(256), primary_key=True),
    Column("content_hash", String(64), primary_key=True, default=""),  # tasks.prompt_identity
    Column("input_hash", String(64), nullable=False, default=""),
    Column("prompt", Text, nullable=False),
    Column("principle_id", String(128)),
    Column("reference", Text),
    Column("category", Text),
    Column("expect", String(16)),  # refuse | comply
    Column("current", Integer, nullable=False, default=1),  # 1: the version the last run registered
)

generations = Table(
    "generations",
    metadata,
    Column("generation_id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), ForeignKey("checkpoints.fingerprint"), nullable=False),
    Column("task_id", String(128), nullable=False),
    Column("prompt_id", String(256), nullable=False),
    Column("input_hash", String(64), nullable=False, default=""),  # what the model read (prompt version)
    Column("gen_hash", String(64), nullable=False),  # hash of the generation config
    Column("response", Text, nullable=False),
    Column("seconds", Float),
    Column("run_id", String(64)),
    Column("created_at", String(40), nullable=False),
    UniqueConstraint("fingerprint", "task_id", "prompt_id", "input_hash", "gen_hash", name="uq_generation_v2"),
    sqlite_autoincrement=True,
)

generation_errors = Table(  # prompts a served model failed on for good (not responses: never scored)
    "generation_errors",
    metadata,
    Column("error_id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("task_id", String(128), nullable=False),
    Column("prompt_id", String(256), nullable=False),
    Column("input_hash", String(64), nullable=False, default=""),  # the prompt version that failed (schema 3)
    Column("gen_hash", String(64), nullable=False),
    Column("error", Text, nullable=False),  # redacted: HTTP status and the server's message
    Column("run_id", String(64)),
    Column("created_at", String(40), nullable=False),
    UniqueConstraint("fingerprint", "task_id", "prompt_id", "input_hash", "gen_hash", name="uq_generation_error_v3"),
    sqlite_autoincrement=True,
)

scorer_metrics = Table(
    "scorer_metrics",
    metadata,
    Column("scorer_id", String(64), primary_key=True),
    Column("scorer_hash", String(64), primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("direction", String(8), nullable=False),  # higher | lower
    Column("lo", Float),
    Column("hi", Float),
    Column("config_json", Text, nullable=False, default="{}"),  # scorer config, secrets removed
    Column("composite", Integer),  # 1: enters the leaderboard composite (NULL reads as 1)
    Column("role", String(32)),  # e.g. refusal (a did-it-refuse verdict); NULL: a plain score
)

scores = Table(
    "scores",
    metadata,
    Column("score_id", Integer, primary_key=True, autoincrement=True),
    Column("generation_id", Integer, ForeignKey("generations.generation_id"), nullable=False),
    Column("scorer_id", String(64), nullable=False),
    Column("scorer_hash", String(64), nullable=False),
    Column("content_hash", String(64), nullable=False, default=""),  # what the scorer read (prompt version)
    Column("metric", String(64), nullable=False),
    Column("value", Float),
    Column("status", String(16), nullable=False),  # ok | na | unscored | error
    Column("error", Text),
    Column("detail_json", Text),
    Column("run_id", String(64)),
    Column("created_at", String(40), nullable=False),
    UniqueConstraint("generation_id", "scorer_id", "scorer_hash", "content_hash", "metric", name="uq_score_v2"),
    sqlite_autoincrement=True,
)

loops = Table(  # one row per `cai-bench pipeline` output folder: what `report` needs for its loop section
    "loops",
    metadata,
    Column("loop_id", String(64), primary_key=True),  # hash of the pipeline's resolved output folder
    Column("title", Text, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("record_json", Text, nullable=False),  # results.loops.LoopRecord as JSON
)

experiments = Table(  # one row per `cai-bench experiment` output folder: its axes, variants and their loops
    "experiments",
    metadata,
    Column("experiment_id", String(64), primary_key=True),  # hash of the experiment's resolved output folder
    Column("title", Text, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("record_json", Text, nullable=False),  # results.experiments.ExperimentRecord as JSON
)

Index("ix_scores_scorer", scores.c.scorer_id, scores.c.scorer_hash)
Index("ix_generations_unit", generations.c.fingerprint, generations.c.task_id, generations.c.gen_hash)


def normalize_url(store: str | None, out_dir: str | None = None) -> str:
    """`--store` value -> SQLAlchemy URL. A bare path means SQLite; None means
    `<out_dir>/results.sqlite`."""
    from pathlib import Path

    if not store:
        return f"sqlite:///{(Path(out_dir or 'cai-bench-out') / 'results.sqlite').resolve()}"
    if "://" in store:
        return store
    return f"sqlite:///{Path(store).expanduser().resolve()}"


def redact_url(url: str) -> str:
    """The store URL as it may be printed or stored (see `cai_bench.redact`)."""
    from cai_bench.redact import redact_url as _redact

    return _redact(url)


def add_metric_declarations(engine) -> None:  # noqa: ANN001
    """Stores written before metrics declared composite/role get the two columns,
    NULL on the rows already there (`harness.declarations` fills those from the
    scorers' current declarations before a report).

    Under the schema lock (`lock_schema`), columns looked at again once it is held:
    two workers opening an old store together otherwise both see the columns
    missing and the second ALTER fails (PostgreSQL: DuplicateColumn)."""
    from sqlalchemy import inspect, text

    insp = inspect(engine)
    if not insp.has_table("scorer_metrics"):
        return
    if {"composite", "role"} <= {c["name"] for c in insp.get_columns("scorer_metrics")}:
        return  # up to date: no lock taken on every open
    with engine.begin() as conn:
        lock_schema(conn)
        have = {c["name"] for c in inspect(conn).get_columns("scorer_metrics")}
        if {"composite", "role"} <= have:
            return  # another process upgraded the store while we waited
        if "composite" not in have:
            conn.execute(text("ALTER TABLE scorer_metrics ADD COLUMN composite INTEGER"))
        if "role" not in have:
            conn.execute(text("ALTER TABLE scorer_metrics ADD COLUMN role VARCHAR(32)"))


# Any fixed 64-bit number: the advisory lock that serializes schema creation.
_SCHEMA_LOCK = 0x6361695F62656E63


def lock_schema(conn) -> None:  # noqa: ANN001
    """Serialize schema changes (CREATE, ALTER) between processes opening the store
    together, for the rest of `conn`'s transaction: PostgreSQL's transaction-level
    advisory lock, SQLite's write lock taken at once (BEGIN IMMEDIATE)."""
    from sqlalchemy import text

    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})


def create_tables(engine) -> None:  # noqa: ANN001
    """Create missing tables. On PostgreSQL under a transaction-level advisory
    lock: workers starting together on an empty database otherwise race in
    CREATE TABLE and all but one crash (duplicate key in pg_type)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            lock_schema(conn)
            metadata.create_all(conn)
    else:
        metadata.create_all(engine)


def _with_driver(url: str) -> str:
    """`postgresql://` means psycopg 3 (the `postgres` extra), whatever
    SQLAlchemy's default driver for the dialect is."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare):]
    return url
