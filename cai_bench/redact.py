"""Redaction: what may leave the process (the store, the terminal, a report).

A URL keeps its scheme, host, port and path; its userinfo (`user:password@`)
and the values of its query string (`?api-key=...`) become `***`. Error texts
go through `redact_text` in one place before they are stored or printed: every
URL in them is redacted, bearer tokens and API-key-shaped words too, and any
secret the caller names. Settings (run configs, scorer configs, recipes) go
through `redact_obj`/`redact_json`: every value under a secret-named key
(`api_key`, `password`, `token`, `Authorization`, ...) becomes `***` and every
URL in a string is redacted, wherever the value came from (flag, environment,
file). The store applies them to every settings column it writes, so a caller
that forgets cannot leak.
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


# Keys whose values are credentials, compared lower-cased with `-` read as `_`
# (`api-key`, `X-Api-Key`, `Authorization` headers, `hf_token`, `db_password`...).
_SECRET_KEY = re.compile(
    r"api_?key|password|passwd|secret|private_key|access_key|credential"  # anywhere in the key
    r"|^(?:(?:access|auth|api|hf|bearer|refresh|session|id|github|openai|hub)_)?token$"  # not pad_token, eos_token
    r"|^(?:proxy_)?authori[sz]ation$|^(?:set_)?cookie$|^pwd$|^auth$")


def is_secret_key(key: Any) -> bool:
    """True for a settings key whose value is a credential (its value is never kept)."""
    return isinstance(key, str) and bool(_SECRET_KEY.search(key.strip().lower().replace("-", "_")))


def redact_obj(obj: Any) -> Any:
    """A JSON-like value fit to store or print: secret-named keys' values masked
    (a null stays null: it says "not set", which is no secret), every URL in its
    strings redacted, token-shaped words masked (checkpoint metadata, run and
    scorer settings, recipes)."""
    if isinstance(obj, str):
        return redact_text(obj) if obj else obj
    if isinstance(obj, dict):
        return {k: (MASK if is_secret_key(k) and v not in (None, "") else redact_obj(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj


def redact_json(text: str) -> str:
    """A JSON document (a stored settings column) through `redact_obj`, returned
    as given when nothing in it is secret (key order and spacing kept: a loop record
    is read back as written); text that is not JSON goes through `redact_text`."""
    import json

    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return redact_text(text)
    clean = redact_obj(data)
    return text if clean == data else json.dumps(clean, sort_keys=True, ensure_ascii=False)
