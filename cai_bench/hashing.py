"""The one hash format for identities in the store and on disk: a short sha256
of canonical JSON, and the form a server URL takes inside an identity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def digest(obj: Any, *, length: int = 16, compact: bool = True, ensure_ascii: bool = False) -> str:
    """The first `length` hex digits of sha256 over `obj` as sorted-key JSON (a value
    JSON lacks is hashed as its str()).

    The defaults are the canonical form (no spaces, UTF-8 text). `compact=False`
    (json.dumps' ", " and ": ") and `ensure_ascii=True` (\\uXXXX escapes) exist only to
    reproduce the forms identities were stored under before there was one helper, so
    those stores keep matching: the log-likelihood units use `compact=False`;
    generation configs, work units and pipeline stage keys `compact=False,
    ensure_ascii=True`. New identities use the defaults."""
    separators = (",", ":") if compact else (", ", ": ")
    blob = json.dumps(obj, sort_keys=True, separators=separators, ensure_ascii=ensure_ascii, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def sha256_file(path: str | Path) -> str:
    """Full sha256 hex of a file's bytes, read in 1 MiB blocks (weights, datasets)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def endpoint(url: str | None) -> str | None:
    """A server URL as part of an identity: scheme, host, port and path; no
    credentials (userinfo) and no query string (keys travel there)."""
    if not url:
        return None
    from urllib.parse import urlsplit

    text = url.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"
