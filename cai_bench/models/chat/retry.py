"""The one retry/timeout policy for every remote call (chat backends, the
moderation scorer): bounded attempts, exponential backoff with full jitter,
the server's Retry-After honoured (tenacity).

Retried: HTTP 408, 409, 429 and 5xx, timeouts, connection errors and resets,
and replies that are not the JSON the wire format promises (truncated or
wrong-shaped bodies). Not retried: other 4xx (a context too long, a content
filter, a bad key): another try would get the same answer.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

T = TypeVar("T")
log = logging.getLogger("cai_bench.chat")

MAX_RETRY_AFTER_S = 60.0
RETRY_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` calls in total; `timeout` seconds per call; backoff between them."""

    attempts: int = 4
    timeout: float = 120.0
    initial_wait: float = 0.5
    max_wait: float = 20.0


class BadReply(Exception):
    """A 2xx reply that is not what the wire format promises (truncated or wrong-shaped JSON)."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an `openai`, `ollama` or `httpx` error carries, if any."""
    for code in (getattr(exc, "status_code", None), getattr(getattr(exc, "response", None), "status_code", None)):
        if isinstance(code, int) and 100 <= code < 600:  # ollama uses -1 for "no HTTP status"
            return code
    return None


def _transport_error(exc: BaseException) -> bool:
    """Timeouts, refused/reset connections, a server that hung up mid-reply."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - both clients bring httpx
        httpx = None  # type: ignore[assignment]
    chain: list[BaseException] = [exc]
    if exc.__cause__ is not None:
        chain.append(exc.__cause__)
    for e in chain:
        if isinstance(e, (TimeoutError, ConnectionError)):
            return True
        if httpx is not None and isinstance(e, (httpx.TransportError, httpx.TimeoutException)):
            return True
        if type(e).__name__ in ("APIConnectionError", "APITimeoutError"):  # openai's wrappers
            return True
    return False


def is_unreachable(exc: BaseException) -> bool:
    """True when no connection could be made at all (nothing listens there, bad host):
    the whole endpoint is down, not one request."""
    try:
        import httpx
    except ImportError:  # pragma: no cover
        return isinstance(exc, ConnectionRefusedError)
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (httpx.ConnectError, ConnectionRefusedError)):
            return True
        e = e.__cause__ or e.__context__
    return False


def is_transient(exc: BaseException) -> bool:
    """Worth another try: 408/409/429/5xx, transport faults, malformed replies."""
    code = status_of(exc)
    if code is not None:
        return code in RETRY_STATUS or code >= 500
    if isinstance(exc, BadReply) or _transport_error(exc):
        return True
    # a truncated body fails to decode (json/pydantic errors) inside the client
    return isinstance(exc, ValueError) or type(exc).__name__ in ("APIResponseValidationError", "ValidationError")


def retry_after_seconds(exc: BaseException) -> float | None:
    """Seconds from an HTTP error's Retry-After (or retry-after-ms) header, if any. The
    `ollama` client drops the response from its error; the httpx error it wraps keeps it."""
    headers = None
    e: BaseException | None = exc
    for _ in range(4):
        if e is None:
            break
        headers = getattr(getattr(e, "response", None), "headers", None)
        if headers:
            break
        e = e.__cause__ or e.__context__
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class _Wait:
    """Exponential backoff with full jitter, or the server's Retry-After when it gives one."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._exp = wait_random_exponential(multiplier=initial, max=maximum)

    def __call__(self, state: RetryCallState) -> float:
        backoff = self._exp(state)
        exc = state.outcome.exception() if state.outcome else None
        hinted = retry_after_seconds(exc) if exc else None
        if hinted is not None:
            return min(max(hinted, 0.0), MAX_RETRY_AFTER_S)
        return backoff


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, *, what: str = "request",
                      retryable: Callable[[BaseException], bool] = is_transient) -> T:
    """Run `fn`, retrying retryable errors up to `policy.attempts` calls in total; re-raise the last."""
    attempts = max(1, policy.attempts)

    def _log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("%s failed (%s), attempt %d/%d; retrying", what, type(exc).__name__, state.attempt_number, attempts)

    retrying = Retrying(stop=stop_after_attempt(attempts), wait=_Wait(policy.initial_wait, policy.max_wait),
                        retry=retry_if_exception(retryable), before_sleep=_log, reraise=True)
    return retrying(fn)


def redact(text: Any, *secrets: str | None) -> str:
    """`text` with every secret replaced by '***' (error messages may echo request
    data), and URLs and token-shaped words redacted (see `cai_bench.redact`)."""
    from cai_bench.redact import redact_text

    return redact_text(text, *secrets)


def describe(exc: BaseException, *secrets: str | None, limit: int = 500) -> str:
    """One line for an error row: the HTTP status and the server's message, secrets removed."""
    code = status_of(exc)
    message = getattr(exc, "message", None) or getattr(exc, "error", None) or str(exc)
    head = f"HTTP {code}: " if code is not None else f"{type(exc).__name__}: "
    return redact(head + " ".join(str(message).split()), *secrets)[:limit]
