"""Where cai-bench keeps things, and writes that never leave half a file behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def cai_bench_home() -> Path:
    """The cache/home folder: `$CAI_BENCH_HOME`, default `~/.cache/cai-bench`."""
    env = os.environ.get("CAI_BENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cai-bench"


def search_path_entries() -> list[Path]:
    """Extra folders from `$CAI_BENCH_PATH` (os.pathsep-separated), in order."""
    raw = os.environ.get("CAI_BENCH_PATH", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: set and restore (brief, single-threaded callers)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`.

    The file gets the mode a plain `open(path, "w")` would give (0666 less the
    umask), not mkstemp's private 0600: reports are meant to be shared."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from None
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """`exc` with the file it concerns: a write error (a full disk: `f.write` raises
    without a name) must say which file the CLI's one-line error is about."""
    if exc.filename is not None and exc.errno is not None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Build a folder in a sibling temp dir and rename it into place on success.

    If `target` appears meanwhile (another process won the race), the new copy
    is discarded and the existing one kept, so concurrent builders end with one
    good copy. On error nothing is left at `target`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's 0700 would hide the folder from the group
        yield tmp
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
