"""A circuit breaker per endpoint client: after `THRESHOLD` timeouts or failed
connections in a row, at least one of them a retry, the remaining requests to
that endpoint fail at once.

Without it a server that never answers costs `attempts x timeout` seconds for
every prompt or judged answer of a run (a dead judge: 494 s for two answers);
with it, the run spends about two timeouts on it (the first attempts, then their
retries), records what is left as error rows with the reason (a re-run retries
them, as for any failed unit) and ends with one summary line per opened circuit
(`drain_opened`).

What counts: a timeout (the total deadline included) or a connection that could
not be made, on every attempt, so requests in flight in parallel add up. Any
HTTP reply or success (the server is there) starts the count again; a reset or
cut connection neither counts nor resets. A retry must be among them: a burst of
parallel first attempts timing out together (a server that stalled once) is
retried as usual, and opens the circuit only if the retries time out too.
"""

from __future__ import annotations

import logging
import threading

from cai_bench.models.chat.retry import BadReply, CircuitOpen, describe, is_timeout_or_unreachable, status_of

THRESHOLD = 4  # consecutive timeouts / failed connections (with a retry among them): one request's default 4 attempts
log = logging.getLogger("cai_bench.chat")

_opened: list["Circuit"] = []
_opened_lock = threading.Lock()
__all__ = ["THRESHOLD", "Circuit", "CircuitOpen", "drain_opened"]


class Circuit:
    """The breaker of one endpoint client (thread-safe: the batch's worker threads share it)."""

    def __init__(self, name: str, threshold: int = THRESHOLD) -> None:
        self.name = name
        self.threshold = max(1, threshold)
        self.failures = 0  # consecutive timeouts / failed connections
        self.retried = False  # ... and one of them was a retry
        self.skipped = 0  # requests failed fast since the circuit opened
        self.last: str | None = None  # the error that opened it, described
        self.cause: BaseException | None = None  # ... and itself (an unreachable endpoint is an EndpointError)
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self.last is not None

    @property
    def reason(self) -> str:
        return (f"skipped: {self.name} stopped answering ({self.threshold} timeouts or failed connections in a row, "
                f"last: {self.last}); a re-run retries it")

    def check(self) -> None:
        """Raise `CircuitOpen` (and count the skipped request) when the circuit is open."""
        with self._lock:
            if self.last is None:
                return
            self.skipped += 1
        raise CircuitOpen(self.reason)

    def record(self, exc: BaseException | None, *, retry: bool = False) -> None:
        """The outcome of one attempt (None: a success); `retry`: it was not the request's first.
        Never raises: it runs while the attempt's own error propagates."""
        try:
            self._record(exc, retry)
        except Exception:  # noqa: BLE001 - an exception object that cannot be inspected: not counted
            log.debug("circuit %s: could not classify %r", self.name, exc, exc_info=True)

    def _record(self, exc: BaseException | None, retry: bool) -> None:
        if exc is None or status_of(exc) is not None or isinstance(exc, BadReply):
            with self._lock:
                self.failures, self.retried = 0, False
            return
        if not is_timeout_or_unreachable(exc):
            return
        with self._lock:
            self.failures += 1
            self.retried = self.retried or retry
            if self.last is not None or self.failures < self.threshold or not self.retried:
                return
            self.last, self.cause = describe(exc, limit=200), exc
        log.warning("%s: %d timeouts or failed connections in a row; its remaining requests fail fast",
                    self.name, self.threshold)
        with _opened_lock:
            _opened.append(self)

    def summary(self) -> str:
        return (f"{self.name}: circuit open after {self.threshold} timeouts or failed connections in a row "
                f"(last: {self.last}); {self.skipped} requests skipped as error rows; a re-run retries them")


def drain_opened() -> list[str]:
    """One summary line per circuit opened since the last call (a run calls it at its
    start, to forget earlier commands in this process, and at its end)."""
    with _opened_lock:
        out = [c.summary() for c in _opened]
        _opened.clear()
    return out
