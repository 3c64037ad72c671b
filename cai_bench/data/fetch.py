"""`cai-bench data fetch NAME`: download a data set cai-bench may not ship from its public
source, check it against the pinned sha256, keep it under `$CAI_BENCH_HOME/data/`.

Explicit, never implicit: loaders only look for the file (`registry.locate`) and name this
command when it is missing. The write is atomic and happens only after the digest matched,
so a failed or tampered download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from cai_bench.data.registry import DataSet, fetch_command, fetched_path, offline_var
from cai_bench.errors import UserError
from cai_bench.paths import atomic_write_bytes

URL_ENV = "CAI_BENCH_DATA_URL"  # a mirror laid out as the shared data folder: BASE/<rel>
MAX_BYTES = 256 * 1024 * 1024


def source_url(ds: DataSet, base_url: str | None = None) -> str:
    """The URL `fetch` reads: BASE/<rel> for a mirror (`base_url`, else $CAI_BENCH_DATA_URL), else
    the pinned public URL."""
    base = base_url or os.environ.get(URL_ENV)
    if base:
        return f"{base.rstrip('/')}/{ds.rel}"
    assert ds.url is not None
    return ds.url


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _reason(exc: BaseException, timeout: float) -> str:
    """A short, human reason for a failed download (no traceback, no nested repr)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else OSError(str(exc.reason))
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (no server there, or the network is blocked)"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, socket.gaierror):
        return f"host not found ({exc.strerror or exc})"
    if isinstance(exc, (http.client.IncompleteRead, ConnectionResetError, http.client.RemoteDisconnected)):
        return "the connection closed before the whole file came"
    return str(exc) or type(exc).__name__


def _download(url: str, timeout: float) -> bytes:
    from cai_bench import __version__

    req = urllib.request.Request(url, headers={"User-Agent": f"cai-bench/{__version__}"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) only, checked by the caller
        body = resp.read(MAX_BYTES + 1)
        length = resp.headers.get("Content-Length")
    if len(body) > MAX_BYTES:
        raise OSError(f"larger than {MAX_BYTES // 2**20} MiB")
    if length and length.isdigit() and int(length) != len(body):
        raise http.client.IncompleteRead(body, int(length) - len(body))
    return body


def fetch(ds: DataSet, *, base_url: str | None = None, timeout: float = 60.0) -> tuple[Path, bool]:
    """Download `ds` into `$CAI_BENCH_HOME/data/<rel>` and return (path, downloaded): False when a
    copy with the pinned digest is already there. Every failure is one `UserError` line
    naming the URL, the reason and the fix; nothing is kept unless the sha256 matched."""
    where = f"data fetch {ds.name}"
    if not ds.fetchable:
        raise UserError(f"{where}: nothing to fetch: it ships with cai-bench (see `cai-bench data list`)")
    dest = fetched_path(ds)
    if dest.is_file() and sha256_file(dest) == ds.sha256:
        return dest, False
    keep = f"or copy {ds.file_name} to {dest}"
    var = offline_var()
    if var:
        raise UserError(f"{where}: downloads are off here ({var}=1). Fix: run `{var}=0 {fetch_command(ds)}` "
                        f"where the network is allowed, {keep}")
    url = source_url(ds, base_url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise UserError(f"{where}: {url}: not an http(s) URL. Fix: set {URL_ENV} (or --base-url) to an http(s) "
                        "mirror of the shared data folder, or unset it for the public source")
    try:
        body = _download(url, timeout)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise UserError(f"{where}: could not download {url}: {_reason(exc, timeout)}. Fix: check the network "
                        f"(or {URL_ENV}, a mirror of the shared data layout), {keep}") from None
    got = hashlib.sha256(body).hexdigest()
    if got != ds.sha256:
        raise UserError(f"{where}: {url}: sha256 {got[:12]}... is not the pinned {str(ds.sha256)[:12]}... (a changed "
                        f"or corrupted file); nothing was kept. Fix: fetch from the public source"
                        f"{f' (unset {URL_ENV})' if base_url or os.environ.get(URL_ENV) else ''}, {keep} "
                        "after checking it")
    atomic_write_bytes(dest, body)
    return dest, True
