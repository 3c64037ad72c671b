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
import importlib
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


class CircuitOpen(Exception):
    """The endpoint's circuit is open (`circuit.Circuit`): this request was not sent."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an `openai`, `ollama` or `httpx` error carries, if any."""
    for code in (getattr(exc, "status_code", None), getattr(getattr(exc, "response", None), "status_code", None)):
        if isinstance(code, int) and 100 <= code < 600:  # ollama uses -1 for "no HTTP status"
            return code
    return None


def _load_http_modules() -> tuple[Any, ...]:
    """`httpx` (the `ollama` client's) and `httpx2` (the `openai` SDK's), whichever is
    installed, imported once here at module import: importing httpx for the first
    time from several worker threads at once gave `partially initialized module
    'httpx'` errors that replaced the timeout being classified."""
    mods = []
    for name in ("httpx", "httpx2"):
        try:
            mods.append(importlib.import_module(name))
        except ImportError:  # pragma: no cover - each client brings its own
            pass
    return tuple(mods)


_HTTP = _load_http_modules()
_TRANSPORT_TYPES: tuple[type[BaseException], ...] = (TimeoutError, ConnectionError) + tuple(
    t for m in _HTTP for t in (m.TransportError, m.TimeoutException))
_TIMEOUT_TYPES: tuple[type[BaseException], ...] = (TimeoutError,) + tuple(m.TimeoutException for m in _HTTP)
_CONNECT_TYPES: tuple[type[BaseException], ...] = (ConnectionRefusedError,) + tuple(m.ConnectError for m in _HTTP)
_TRANSPORT_NAMES = frozenset({"APIConnectionError", "APITimeoutError", "ConnectError", "ConnectTimeout",
                              "ReadTimeout", "WriteTimeout", "PoolTimeout", "ReadError", "WriteError",
                              "RemoteProtocolError", "TimeoutException", "TransportError"})


def _chain(exc: BaseException, depth: int = 6) -> list[BaseException]:
    """`exc` and the errors it wraps (cause, else context), without looping."""
    out: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(out) < depth and all(e is not o for o in out):
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def _transport_error(exc: BaseException) -> bool:
    """Timeouts, refused/reset connections, a server that hung up mid-reply: by class
    (httpx, httpx2, builtins), else by the class name of any error in the chain, so a
    client's wrapper class this module does not import is still recognised."""
    return any(isinstance(e, _TRANSPORT_TYPES) or any(c.__name__ in _TRANSPORT_NAMES for c in type(e).__mro__)
               for e in _chain(exc))


def is_timeout_or_unreachable(exc: BaseException) -> bool:
    """A timeout (the total deadline included) or a connection that could not be made:
    what the circuit breaker counts. A reset or an HTTP error proves the server is there."""
    for e in _chain(exc):
        if isinstance(e, _TIMEOUT_TYPES + _CONNECT_TYPES) or type(e) is ConnectionError:  # ollama's "cannot connect"
            return True
        if type(e).__name__ in ("APITimeoutError", "ConnectError", "ConnectTimeout", "ReadTimeout", "WriteTimeout",
                                "PoolTimeout"):
            return True
    return False


def is_unreachable(exc: BaseException) -> bool:
    """True when no connection could be made at all (nothing listens there, bad host):
    the whole endpoint is down, not one request."""
    return any(isinstance(e, _CONNECT_TYPES) for e in _chain(exc, depth=16))


def is_transient(exc: BaseException) -> bool:
    """Worth another try: 408/409/429/5xx, transport faults, malformed replies. Never
    raises: an error while classifying would replace the error being classified."""
    try:
        return _is_transient(exc)
    except Exception:  # noqa: BLE001 - an odd exception object: not worth a retry, keep the original error
        log.debug("could not classify %r", exc, exc_info=True)
        return False


def _is_transient(exc: BaseException) -> bool:
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
                      retryable: Callable[[BaseException], bool] = is_transient, circuit: Any = None,
                      throttle: Any = None) -> T:
    """Run `fn`, retrying retryable errors up to `policy.attempts` calls in total; re-raise the last.
    With a `circuit` (`circuit.Circuit`), every attempt's outcome is recorded and an open
    circuit raises `CircuitOpen` before the call, which is never retried. With a `throttle`
    (`throttle.Throttle`, shared by a client's concurrent requests), each attempt waits for
    a slot it allows and reports its outcome (429/503 slow every request down)."""
    attempts = max(1, policy.attempts)

    def _log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("%s failed (%s), attempt %d/%d; retrying", what, type(exc).__name__, state.attempt_number, attempts)

    tried = [0]

    def observed() -> T:
        if circuit is None:
            return fn()
        circuit.check()
        tried[0] += 1
        try:
            out = fn()
        except BaseException as exc:
            circuit.record(exc, retry=tried[0] > 1)
            raise
        circuit.record(None)
        return out

    def attempt() -> T:
        if throttle is None:
            return observed()
        with throttle.slot():
            try:
                out = observed()
            except BaseException as exc:
                throttle.done(exc)
                raise
            throttle.done(None)
            return out

    retrying = Retrying(stop=stop_after_attempt(attempts), wait=_Wait(policy.initial_wait, policy.max_wait),
                        retry=retry_if_exception(lambda e: not isinstance(e, CircuitOpen) and retryable(e)),
                        before_sleep=_log, reraise=True)
    return retrying(attempt)


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
