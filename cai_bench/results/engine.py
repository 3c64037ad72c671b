"""Opening a store: the engine (WAL and a busy timeout on SQLite; psycopg 3 for
`postgresql://`), the schema version checked (an empty store created, an older
one migrated, see `migrations`), and runs that died without saying so marked
`interrupted` (see `liveness`).

Commands that only read (`report`, `status`, the loader) open with `read_only=True`:
nothing is written, not even SQLite's journal mode or a dead run's status, so a
store on a read-only file, folder or mount (or one another user owns) is readable.
SQLite is opened by URI with `mode=ro` (a live store: WAL readers see what writers
committed) or, where nobody may write the file (no write bits on the file or its
folder, a read-only mount), `immutable=1`, which needs no `-shm`/`-wal` beside it;
PostgreSQL sessions are `default_transaction_read_only`."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cai_bench.errors import UserError
from cai_bench.results.liveness import reap_interrupted
from cai_bench.results.migrations import ensure_schema, stored_version
from cai_bench.results.schema import SCHEMA_VERSION, _with_driver, add_metric_declarations, redact_url

log = logging.getLogger("cai_bench.results")


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def _unwritable(path: Path) -> bool:
    """Whether the SQLite file is meant to stay as it is: a read-only mount, no write
    access, or no write bit on the file or its folder (root ignores the bits; the
    owner's `chmod -w` still says "do not write")."""
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        pass
    if not (os.access(path, os.W_OK) and os.access(folder, os.W_OK)):
        return True
    return not (path.stat().st_mode & 0o222) or not (folder.stat().st_mode & 0o222)


def _sqlite_reader(path: Path):  # noqa: ANN202 - a DB-API connection factory
    """Connections that cannot write `path`: `mode=ro`, or `immutable=1` where the file
    must stay untouched and holds no write-ahead log to read (immutable ignores one).
    A read-only store left with an unmerged log (its writer was killed) and no `-shm`
    cannot be opened `mode=ro` in a read-only folder: it is read from a private copy
    (file and log), so committed work is neither hidden nor written back."""
    import sqlite3
    from urllib.parse import quote

    wal = path.with_name(path.name + "-wal")
    pending_log = wal.exists() and wal.stat().st_size > 0
    mode = "immutable=1" if _unwritable(path) and not pending_log else "mode=ro"
    target = path.resolve()
    if pending_log and _unwritable(path):  # mode=ro would need (create) a -shm beside it
        target = _private_copy(path, wal)
        log.info("store %s is read-only with an unmerged write-ahead log: reading a copy in %s", path, target.parent)
    uri = f"file:{quote(str(target))}?{mode}"

    def connect():  # noqa: ANN202
        conn = sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)
        conn.execute("PRAGMA query_only=ON")
        return conn

    return connect


def _private_copy(path: Path, wal: Path) -> Path:
    """`path` and its log copied to a temporary folder removed when the process ends."""
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="cai-bench-store-"))
    atexit.register(shutil.rmtree, folder, True)
    shutil.copyfile(path, folder / path.name)
    shutil.copyfile(wal, folder / wal.name)
    return folder / path.name


def _upgrade_needed(engine, found: int | None) -> str | None:  # noqa: ANN001
    """Why a store must be changed before this version can read it, or None."""
    from sqlalchemy import inspect

    if found is None:
        return None
    if found > SCHEMA_VERSION:
        return None  # refused by `ensure_schema` with its own message
    if found < SCHEMA_VERSION:
        return f"has schema version {found} (this cai-bench reads {SCHEMA_VERSION})"
    insp = inspect(engine)
    if insp.has_table("scorer_metrics") and not {"composite", "role"} <= {
            c["name"] for c in insp.get_columns("scorer_metrics")}:
        return "predates metric declarations (scorer_metrics lacks composite/role)"
    return None


def _read_only_engine(url: str):  # noqa: ANN202 - SQLAlchemy Engine
    """An engine that never writes `url`; an older schema is upgraded first only where
    the store is a writable SQLite file (as every open of one always did), else refused
    in one line naming the command that migrates it. A missing SQLite file stays
    FileNotFoundError; an empty one (0 bytes, no tables) is a UserError."""
    from sqlalchemy import create_engine

    path = _sqlite_path(url)
    if path is not None:
        if not path.exists():
            raise FileNotFoundError(path)
        if path.is_dir():
            raise UserError(f"store {redact_url(url)}: is a folder, not a results store file "
                            "(pass --store FOLDER/results.sqlite)")
        if path.stat().st_size == 0:
            raise UserError(f"store {redact_url(url)}: empty file (0 bytes), not a results store: "
                            "run `cai-bench run` first or pass --store")
        engine = create_engine("sqlite://", creator=_sqlite_reader(path))
    else:
        url = _with_driver(url)
        _need_psycopg(url)
        engine = create_engine(url, pool_pre_ping=True,
                               connect_args={"options": "-c default_transaction_read_only=on"}
                               if "+psycopg" in url.split("://", 1)[0] else {})
    found = stored_version(engine)
    if found is not None and found > SCHEMA_VERSION:
        engine.dispose()
        ensure_schema(engine, url, create=False)  # raises the "upgrade cai-bench" line
    reason = _upgrade_needed(engine, found)
    if reason is None:
        return engine
    engine.dispose()
    if path is not None and not _unwritable(path):
        make_engine(url, create=False).dispose()  # a writable SQLite store is migrated on open (backup first)
        return _read_only_engine(url)
    where = "read-only here: on a writable copy, " if path is not None else "back it up (pg_dump), then "
    raise UserError(f"results store {redact_url(url)} {reason} and is not changed by reading; {where}"
                    f"`cai-bench report --migrate --store URL` migrates it")


def _write_failure(path: Path, exc: BaseException) -> str | None:
    """Why SQLite could not write the store file when the cause is the environment
    (a full disk, a file size limit, a read-only file), else None. SQLite says only
    "disk I/O error" or "database or disk is full"; the limit and the free space name it."""
    import resource
    import shutil
    import sqlite3

    if not isinstance(exc, sqlite3.Error):
        return None
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_READONLY"):
        return f"{exc} (the file or its folder is read-only)"
    if not name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        return None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]
        if max((f.stat().st_size for f in files if f.exists()), default=0) + (1 << 20) > limit:
            return f"file size limit reached ({limit} bytes: ulimit -f)"
    try:
        if shutil.disk_usage(path.parent).free < (4 << 20):
            return "no space left on device"
    except OSError:
        pass
    return str(exc) if name.startswith("SQLITE_FULL") else None


def _need_psycopg(url: str) -> None:
    if "+psycopg" in url.split("://", 1)[0]:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            from cai_bench.errors import MissingDependency

            raise MissingDependency("psycopg (PostgreSQL store)", "pip install 'cai-bench[postgres]'") from None


def make_engine(url: str, *, create: bool = True, read_only: bool = False):
    """An engine on `url`, schema checked (created when `create` and empty); dead runs marked.
    `read_only`: see `_read_only_engine` (nothing created, migrated or marked)."""
    from sqlalchemy import create_engine, event

    if read_only:
        return _read_only_engine(url)
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if not create and not path.exists():
            raise FileNotFoundError(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "handle_error")
        def _no_room(ctx) -> None:  # noqa: ANN001 - ExceptionContext
            reason = _write_failure(path, ctx.original_exception)
            if reason is not None:
                raise UserError(f"store {path}: cannot write: {reason}; work committed before is kept: "
                                "the same command continues once it can write") from None
    else:
        url = _with_driver(url)
        _need_psycopg(url)
        engine = create_engine(url, pool_pre_ping=True)
    found = ensure_schema(engine, url, create=create)
    if found is not None or create:
        add_metric_declarations(engine)
        reap_interrupted(engine)
    return engine


def open_engine(url: str, *, create: bool = True, read_only: bool = False):
    """`make_engine`, connected once, with every way a store URL can be wrong
    (unknown dialect, driver not installed, server refused, a file that is not
    SQLite, a folder) turned into one `store URL: reason` line; the URL is
    redacted. A missing SQLite file with `create=False` stays FileNotFoundError."""
    with store_errors(url):
        engine = make_engine(url, create=create and not read_only, read_only=read_only)
        if not create or read_only:
            with engine.connect():
                pass
        return engine


@contextmanager
def store_errors(url: str) -> Iterator[None]:
    """Any way the store at `url` fails to open or answer (see `open_engine`) as one
    redacted `store URL: reason` UserError; FileNotFoundError passes through."""
    import sqlite3

    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from cai_bench.redact import redact_text

    def fail(reason: str) -> UserError:
        reason = " ".join(str(reason).split()) or "cannot be opened"
        return UserError(f"store {redact_url(url)}: {redact_text(reason)[:300]}")

    try:
        yield
    except FileNotFoundError:
        raise
    except ArgumentError as exc:
        if "Can't load plugin" in str(exc):
            raise fail(f"unknown database dialect {url.split(':', 1)[0]!r} "
                       "(use sqlite:///PATH, a file path, or postgresql+psycopg://...)") from None
        raise fail(f"not a store URL or SQLite path ({exc})") from None
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        lines = str(orig if orig is not None else exc).strip().splitlines()
        raise fail(lines[0] if lines else type(exc).__name__) from None
    except sqlite3.Error as exc:  # raw sqlite3 (a migration's backup copy)
        raise fail(str(exc) or type(exc).__name__) from None
    except ImportError as exc:
        raise fail(f"database driver not installed ({exc.name or exc})") from None
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
