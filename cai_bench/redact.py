"""Redaction: what may leave the process (the store, the terminal, a report).

A URL keeps its scheme, host, port and path; its userinfo (`user:password@`)
and the values of its query string (`?api-key=...`) become `***`. Error texts
go through `redact_text` in one place before they are stored or printed: every
URL in them is redacted, bearer tokens and API-key-shaped words too, and any
secret the caller names.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

MASK = "***"

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`)\]}]*[^\s'\"<>`)\]}.,:;!?]")  # no trailing punctuation
_TOKENS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), rf"\1 {MASK}"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), f"sk-{MASK}"),
    (re.compile(r"\bhf_[A-Za-z0-9]{8,}"), f"hf_{MASK}"),
    (re.compile(r"(?i)\b((?:api[-_]?key|access[-_]?token|password|passwd|secret|token)[\"']?\s*[:=]\s*[\"']?)"
                r"(?!\*\*\*)[^\s\"',;&]+"), rf"\1{MASK}"),
)


def redact_url(url: Any) -> str:
    """`url` without credentials: userinfo and query values replaced by `***`.

    Works for http(s), SQLAlchemy store URLs (`postgresql+psycopg://u:p@h/db`)
    and bare `host:port`; text that is not a URL comes back unchanged."""
    text = "" if url is None else str(url)
    if "://" not in text:
        return _redact_query_only(text)
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
    except ValueError:
        return _URL.sub(MASK, text)
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = _mask_query(parts.query)
    fragment = MASK if parts.fragment and "=" in parts.fragment else parts.fragment
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return text  # nothing secret; keep the text as written (urlunsplit would drop `////`)
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, fragment))


def _mask_query(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return MASK
    return "&".join(f"{k}={MASK}" if v else k for k, v in pairs)


def _redact_query_only(text: str) -> str:
    head, sep, query = text.partition("?")
    return head + sep + _mask_query(query) if sep and "=" in query else text


def redact_text(text: Any, *secrets: str | None) -> str:
    """`text` (an error message, say) with every URL redacted, token-shaped
    words masked and each given secret replaced by `***`."""
    out = "" if text is None else str(text)
    for s in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        out = out.replace(s, MASK)
    out = _URL.sub(lambda m: redact_url(m.group(0)), out)
    for pattern, repl in _TOKENS:
        out = pattern.sub(repl, out)
    return out


def redact_obj(obj: Any) -> Any:
    """A JSON-like value with every URL in its strings redacted (checkpoint
    metadata, scorer settings) before it is stored."""
    if isinstance(obj, str):
        return _URL.sub(lambda m: redact_url(m.group(0)), obj) if "://" in obj else obj
    if isinstance(obj, dict):
        return {k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj
