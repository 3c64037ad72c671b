"""Opening a store: the engine (WAL and a busy timeout on SQLite; psycopg 3 for
`postgresql://`), the schema version checked (an empty store created, an older
one migrated, see `migrations`), and runs that died without saying so marked
`interrupted` (see `liveness`)."""

from __future__ import annotations

from cai_bench.results.liveness import reap_interrupted
from cai_bench.results.migrations import ensure_schema
from cai_bench.results.schema import _with_driver, add_metric_declarations, redact_url


def make_engine(url: str, *, create: bool = True):
    """An engine on `url`, schema checked (created when `create` and empty); dead runs marked."""
    from pathlib import Path

    from sqlalchemy import create_engine, event

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
    else:
        url = _with_driver(url)
        if "+psycopg" in url.split("://", 1)[0]:
            try:
                import psycopg  # noqa: F401
            except ImportError:
                from cai_bench.errors import MissingDependency

                raise MissingDependency("psycopg (PostgreSQL store)", "pip install 'cai-bench[postgres]'") from None
        engine = create_engine(url, pool_pre_ping=True)
    found = ensure_schema(engine, url, create=create)
    if found is not None or create:
        add_metric_declarations(engine)
        reap_interrupted(engine)
    return engine


def open_engine(url: str, *, create: bool = True):
    """`make_engine`, connected once, with every way a store URL can be wrong
    (unknown dialect, driver not installed, server refused, a file that is not
    SQLite, a folder) turned into one `store URL: reason` line; the URL is
    redacted. A missing SQLite file with `create=False` stays FileNotFoundError."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from cai_bench.errors import UserError
    from cai_bench.redact import redact_text

    def fail(reason: str) -> UserError:
        reason = " ".join(str(reason).split()) or "cannot be opened"
        return UserError(f"store {redact_url(url)}: {redact_text(reason)[:300]}")

    try:
        engine = make_engine(url, create=create)
        if not create:
            with engine.connect():
                pass
        return engine
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
    except ImportError as exc:
        raise fail(f"database driver not installed ({exc.name or exc})") from None
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
