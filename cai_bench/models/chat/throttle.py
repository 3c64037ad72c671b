"""Shared back-off for one endpoint client's concurrent requests.

Served models are asked `concurrency` requests at a time (default 16,
`cai_bench.defaults.CHAT`). When the server says it is overloaded (HTTP 429 or
503), every request of the client slows down, not only the one that was told:
the requests in flight are halved (at least one), and with a Retry-After
(seconds or an HTTP date) no new request is sent before it passes. Each success
lets one more request in again, up to `concurrency`. The retry policy
(`retry.call_with_retries`) still waits and retries the refused request itself;
the order of the results never depends on any of this.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from collections.abc import Iterator

from cai_bench.models.chat.retry import MAX_RETRY_AFTER_S, retry_after_seconds, status_of

log = logging.getLogger("cai_bench.chat")

SLOW_DOWN = frozenset({429, 503})


class Throttle:
    """How many requests of one client may be in flight now, and from when (thread-safe)."""

    def __init__(self, name: str, concurrency: int) -> None:
        self.name = name
        self.limit = max(1, concurrency)
        self.allowed = self.limit  # lowered on 429/503, raised again by successes
        self.in_flight = 0
        self.resume_at = 0.0  # time.monotonic() before which no request starts (Retry-After)
        self.slowed = 0  # 429/503 replies seen
        self.waited = 0.0  # seconds during which no request was sent (Retry-After)
        self.peak = 0  # most requests in flight at once
        self._cond = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the allowed slots for one attempt; the attempt's outcome is
        recorded by `done`."""
        self._acquire()
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= 1
                self._cond.notify_all()

    def _acquire(self) -> None:
        with self._cond:
            while True:
                wait = self.resume_at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                if self.in_flight < self.allowed:
                    self.in_flight += 1
                    self.peak = max(self.peak, self.in_flight)
                    return
                self._cond.wait()

    def done(self, exc: BaseException | None) -> None:
        """The outcome of one attempt: a 429/503 halves the requests allowed in flight
        and honours its Retry-After for all of them; a success allows one more."""
        code = status_of(exc) if exc is not None else None
        with self._cond:
            if exc is None:
                if self.allowed < self.limit:
                    self.allowed += 1
                    self._cond.notify_all()
                return
            if code not in SLOW_DOWN:
                return
            self.slowed += 1
            self.allowed = max(1, self.allowed // 2)
            hinted = retry_after_seconds(exc)
            if hinted is not None:
                now = time.monotonic()
                until = now + min(max(hinted, 0.0), MAX_RETRY_AFTER_S)
                if until > self.resume_at:
                    self.waited += until - max(self.resume_at, now)
                    self.resume_at = until
            first = self.slowed == 1
        (log.warning if first else log.info)(
            "%s: HTTP %s, the server asks to slow down: %d request(s) in flight at most%s", self.name, code,
            self.allowed, f", none for {hinted:g} s (Retry-After)" if hinted is not None else "")

    def summary(self) -> str | None:
        """One line when the server asked to slow down during the client's life."""
        if not self.slowed:
            return None
        return (f"{self.name}: the server answered 429/503 {self.slowed} time(s); requests were slowed "
                f"(held {self.waited:.1f} s by Retry-After, {self.allowed} of {self.limit} in flight now)")
