"""The store's schema version: written in `meta`, checked every time a store is
opened, and older stores brought up to date.

Version 1 is the schema before content identity (no `meta` table). Going to 2:
runs gain liveness and sample columns; prompts, generations and scores gain
their content/input hashes (`LEGACY` for the rows already there, which stay
reportable until a run registers the task's prompts anew) and new unique keys;
ids switch to AUTOINCREMENT. Going to 3: `generation_errors` gains the failed
prompt version's input hash in its key (`LEGACY` for the rows already there:
an edited prompt no longer inherits an old error row). Steps run in order, so
a version-1 store goes 1 -> 2 -> 3. On SQLite this happens in place on open,
after a backup copy of the file (`<name>.v<found>-backup`). On PostgreSQL it is
never implicit (many workers may share the store): the open is refused with
the command that migrates, `cai-bench report --migrate --store URL`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine, column, insert, inspect, literal, select, table, text

from cai_bench.errors import UserError
from cai_bench.results import schema as S

log = logging.getLogger("cai_bench.results")


def stored_version(engine: Engine) -> int | None:
    """The store's schema version; None for an empty database, 1 for tables without `meta`."""
    names = set(inspect(engine).get_table_names())
    if "meta" in names:
        with engine.connect() as conn:
            value = conn.execute(select(S.meta.c.value).where(S.meta.c.key == "schema_version")).scalar()
        return int(value) if value is not None else None
    return 1 if "generations" in names or "runs" in names else None


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def _write_version(conn, version: int = S.SCHEMA_VERSION) -> None:  # noqa: ANN001
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    stmt = upsert(S.meta).values(key="schema_version", value=str(version))
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value}))


_locked = S.lock_schema  # the one schema lock: creation, migrations and ALTERs take it


def _create(engine: Engine) -> None:
    """Tables and version in one locked transaction: another process sees either
    nothing or a complete store of this version, never tables without a version."""
    with engine.begin() as conn:
        _locked(conn)
        S.metadata.create_all(conn)
        _write_version(conn)


def ensure_schema(engine: Engine, url: str, *, create: bool = True, migrate: bool | None = None) -> int | None:
    """Check the version on open: create an empty store (when `create`), migrate an
    older one (SQLite: always, after a backup; PostgreSQL: only with `migrate=True`),
    refuse a newer one. Returns the version found before any change."""
    found = stored_version(engine)
    if found is None:
        if create:
            _create(engine)
        return found
    if found > S.SCHEMA_VERSION:
        raise UserError(f"results store {S.redact_url(url)} has schema version {found}, newer than this cai-bench "
                        f"reads ({S.SCHEMA_VERSION}): upgrade cai-bench (pip install -U cai-bench)")
    if found < S.SCHEMA_VERSION:
        path = _sqlite_path(url)
        if migrate is None:
            migrate = path is not None
        if not migrate:
            raise UserError(f"results store {S.redact_url(url)} has schema version {found} (this cai-bench uses "
                            f"{S.SCHEMA_VERSION}): back it up (pg_dump), then run "
                            f"`cai-bench report --migrate --store URL`")
        backup = _backup(path, found) if path is not None else None
        if found < 2:
            _migrate_1_to_2(engine)
        _migrate_2_to_3(engine)
        log.warning("results store migrated from schema %s to %s%s", found, S.SCHEMA_VERSION,
                    f" (backup: {backup})" if backup else "")
    elif create:
        S.create_tables(engine)  # tables added within a version appear (under the same lock)
    return found


def migrate_store(url: str) -> int | None:
    """`cai-bench report --migrate`: bring the store at `url` to this version (also
    PostgreSQL); returns the version found (None: no store there)."""
    from sqlalchemy import create_engine

    path = _sqlite_path(url)
    if path is not None and not path.exists():
        return None
    engine = create_engine(S._with_driver(url))
    try:
        found = ensure_schema(engine, url, create=False, migrate=True)
        if found is not None:
            S.add_metric_declarations(engine)  # columns added within this version: read-only opens need them
        return found
    finally:
        engine.dispose()


def _backup(path: Path, version: int) -> Path:
    """A consistent copy of the SQLite file (WAL included) before it is changed."""
    import sqlite3

    target = path.with_name(f"{path.name}.v{version}-backup")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.v{version}-backup.{n}")
    src, dst = sqlite3.connect(path), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


_RUN_COLUMNS = (("heartbeat_at", "VARCHAR(40)"), ("pid", "INTEGER"), ("host", "VARCHAR(255)"),
                ("sample_json", "TEXT"))


def _migrate_1_to_2(engine: Engine) -> None:
    """One transaction (on SQLite an IMMEDIATE one: a second process opening the
    old store at the same moment waits, then finds it migrated)."""
    with engine.begin() as conn:
        _locked(conn)
        if inspect(conn).has_table("meta"):
            return  # another process migrated it while we waited
        for name, sqltype in _RUN_COLUMNS:
            conn.execute(text(f"ALTER TABLE runs ADD COLUMN {name} {sqltype}"))
        S.metadata.create_all(conn, tables=[S.meta, S.gen_configs, S.generation_errors])
        if conn.dialect.name == "sqlite":
            _rebuild_sqlite(conn)
        else:
            _alter_postgresql(conn)
        _write_version(conn, 2)


def _migrate_2_to_3(engine: Engine) -> None:
    """`generation_errors` keyed by the prompt's input hash too. One locked
    transaction; a no-op when another process got there first, or when the table
    was just made by `_migrate_1_to_2` (created in its current shape)."""
    with engine.begin() as conn:
        _locked(conn)
        version = conn.execute(select(S.meta.c.value).where(S.meta.c.key == "schema_version")).scalar()
        if version is not None and int(version) >= 3:
            return  # another process migrated it while we waited
        insp = inspect(conn)
        if not insp.has_table("generation_errors"):
            S.metadata.create_all(conn, tables=[S.generation_errors])
        elif "input_hash" not in {c["name"] for c in insp.get_columns("generation_errors")}:
            if conn.dialect.name == "sqlite":
                _rebuild_sqlite_errors(conn)
            else:
                for stmt in (f"ALTER TABLE generation_errors ADD COLUMN input_hash VARCHAR(64) NOT NULL "
                             f"DEFAULT '{S.LEGACY}'",
                             "ALTER TABLE generation_errors DROP CONSTRAINT uq_generation_error",
                             "ALTER TABLE generation_errors ADD CONSTRAINT uq_generation_error_v3 "
                             "UNIQUE (fingerprint, task_id, prompt_id, input_hash, gen_hash)"):
                    conn.execute(text(stmt))
        _write_version(conn, 3)


_V2_ERRORS = ["error_id", "fingerprint", "task_id", "prompt_id", "gen_hash", "error", "run_id", "created_at"]


def _rebuild_sqlite_errors(conn) -> None:  # noqa: ANN001
    """SQLite cannot change a unique constraint in place: copy into the new shape (ids kept)."""
    conn.execute(text("ALTER TABLE generation_errors RENAME TO generation_errors_v2"))
    S.metadata.create_all(conn, tables=[S.generation_errors])
    old = table("generation_errors_v2", *[column(c) for c in _V2_ERRORS])
    conn.execute(insert(S.generation_errors).from_select(
        [*_V2_ERRORS, "input_hash"], select(*[old.c[c] for c in _V2_ERRORS], literal(S.LEGACY))))
    conn.execute(text("DROP TABLE generation_errors_v2"))


# v1 columns of the rebuilt tables; the new ones are filled with these values
_V1 = {
    "prompts": (["task_id", "prompt_id", "prompt", "principle_id", "reference", "category", "expect"],
                {"content_hash": S.LEGACY, "input_hash": S.LEGACY, "current": 1}),
    "generations": (["generation_id", "fingerprint", "task_id", "prompt_id", "gen_hash", "response", "seconds",
                     "run_id", "created_at"], {"input_hash": S.LEGACY}),
    "scores": (["score_id", "generation_id", "scorer_id", "scorer_hash", "metric", "value", "status", "error",
                "detail_json", "run_id", "created_at"], {"content_hash": S.LEGACY}),
}


def _rebuild_sqlite(conn) -> None:  # noqa: ANN001
    """SQLite cannot change a primary key or unique constraint in place: rename the
    old tables away, create the new ones, copy (ids kept), drop the old ones."""
    for name in _V1:
        for (idx,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
                                        "AND sql IS NOT NULL"), {"t": name}).all():
            conn.execute(text(f'DROP INDEX "{idx}"'))
        conn.execute(text(f"ALTER TABLE {name} RENAME TO {name}_v1"))
    S.metadata.create_all(conn, tables=[S.prompts, S.generations, S.scores])
    for name, (cols, fill) in _V1.items():
        old = table(f"{name}_v1", *[column(c) for c in cols])
        new = S.metadata.tables[name]
        sel = select(*[old.c[c] for c in cols], *[literal(v) for v in fill.values()])
        conn.execute(insert(new).from_select([*cols, *fill], sel))
    for name in ("scores", "generations", "prompts"):
        conn.execute(text(f"DROP TABLE {name}_v1"))


def _alter_postgresql(conn) -> None:  # noqa: ANN001
    """PostgreSQL changes keys in place; its sequences never reuse ids anyway."""
    for stmt in (
        f"ALTER TABLE prompts ADD COLUMN content_hash VARCHAR(64) NOT NULL DEFAULT '{S.LEGACY}'",
        f"ALTER TABLE prompts ADD COLUMN input_hash VARCHAR(64) NOT NULL DEFAULT '{S.LEGACY}'",
        "ALTER TABLE prompts ADD COLUMN current INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE prompts DROP CONSTRAINT prompts_pkey",
        "ALTER TABLE prompts ADD PRIMARY KEY (task_id, prompt_id, content_hash)",
        f"ALTER TABLE generations ADD COLUMN input_hash VARCHAR(64) NOT NULL DEFAULT '{S.LEGACY}'",
        "ALTER TABLE generations DROP CONSTRAINT uq_generation",
        "ALTER TABLE generations ADD CONSTRAINT uq_generation_v2 "
        "UNIQUE (fingerprint, task_id, prompt_id, input_hash, gen_hash)",
        f"ALTER TABLE scores ADD COLUMN content_hash VARCHAR(64) NOT NULL DEFAULT '{S.LEGACY}'",
        "ALTER TABLE scores DROP CONSTRAINT uq_score",
        "ALTER TABLE scores ADD CONSTRAINT uq_score_v2 "
        "UNIQUE (generation_id, scorer_id, scorer_hash, content_hash, metric)",
    ):
        conn.execute(text(stmt))
