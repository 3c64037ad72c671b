"""The one hash format for identities in the store and on disk: a short sha256
of canonical JSON, and the form a server URL takes inside an identity."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def digest(obj: Any) -> str:
    """16 hex digits of sha256 over `obj` as canonical JSON (sorted keys, no spaces)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


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
