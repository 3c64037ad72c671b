"""A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` in a temp
dir, `pg_ctl start` on a free loopback port, removed on exit.

Hand-written rather than pytest-postgresql because PostgreSQL refuses to run as
root: as root the binaries run as the `postgres` user through `runuser`.
Binaries are looked up on PATH, then in Debian's /usr/lib/postgresql/*/bin.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(Path(d) / name, os.X_OK):
            return str(Path(d) / name)
    return None


def available() -> tuple[bool, str]:
    missing = [n for n in ("initdb", "pg_ctl") if pg_bin(n) is None]
    if missing:
        return False, f"PostgreSQL binaries not found: {', '.join(missing)} (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False, "psycopg is not installed (pip install 'cai-bench[postgres]')"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return False, "running as root and there is no postgres user to run the server as"
    return True, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def throwaway_cluster(max_connections: int = 100) -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh database on a private server."""
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    tmp = Path(tempfile.mkdtemp(prefix="cai-bench-pg-"))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    if as_root:
        shutil.chown(tmp, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C"}
    started = False
    try:
        subprocess.run([*prefix, pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, env=env, timeout=120)
        opts = (f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off -c full_page_writes=off "
                f"-c max_connections={max_connections}")
        subprocess.run([*prefix, pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-w", "-t", "60",
                        "-l", str(tmp / "server.log"), "start"], check=True, capture_output=True, env=env,
                       timeout=90)
        started = True
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run([*prefix, pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, env=env, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def create_database(server: str, name: str) -> str:
    """A new, empty database on `server` (a URL ending in a database); its URL."""
    from sqlalchemy import create_engine, text

    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server.rsplit("/", 1)[0] + "/" + name


def query(url: str, sql: str) -> list[tuple]:
    """Rows of one SQL statement, as tuples (checks on what a store holds)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql)).all()]
    finally:
        engine.dispose()
