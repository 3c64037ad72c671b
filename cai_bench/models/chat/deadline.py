"""A total deadline for every remote request: connect + send + the whole body.

httpx's timeouts are per phase and per read: a server that sends its headers and
then one byte a second never trips a 5 s read timeout, so one request could run
for hours. `arm(client, seconds)` fixes that for an `httpx` or `httpx2` client
(the `ollama` client uses httpx, the `openai` SDK httpx2): a request hook stamps
the deadline `seconds` from the request's start on the calling thread, and the
connection pool's network backend is wrapped so that every connect, read and
write waits at most until that deadline. Past it, the pool raises its own
`ConnectTimeout`/`ReadTimeout`/`WriteTimeout`, which the client maps to its usual
timeout error, so the retry policy sees an ordinary timeout.

Sync clients run a request (and read its body) on the calling thread, so a
thread-local deadline is exact: no watchdog thread, nothing left running.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

_local = threading.local()


def _remaining() -> float | None:
    """Seconds left before this thread's request deadline; None when none is set."""
    deadline = getattr(_local, "deadline", None)
    return None if deadline is None else deadline - time.monotonic()


def _bound(timeout: float | None, errors: Any, kind: str, total: float) -> float | None:
    """`timeout` cut to the time left; the pool's timeout error once nothing is left."""
    left = _remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise getattr(errors, kind)(f"total deadline of {total:g} s exceeded")
    return left if timeout is None else min(timeout, left)


class _Stream:
    """A network stream whose reads and writes stop at the request's deadline."""

    def __init__(self, inner: Any, errors: Any, total: float) -> None:
        self._inner, self._errors, self._total = inner, errors, total

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._inner.read(max_bytes, _bound(timeout, self._errors, "ReadTimeout", self._total))
        except self._errors.ReadTimeout:
            left = _remaining()
            if left is not None and left <= 0.05:  # the deadline, not the read timeout, ended it: say so
                raise self._errors.ReadTimeout(f"total deadline of {self._total:g} s exceeded") from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bound(timeout, self._errors, "WriteTimeout", self._total))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> "_Stream":
        timeout = _bound(timeout, self._errors, "ConnectTimeout", self._total)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._errors, self._total)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend:
    """A network backend whose connections (and their streams) stop at the deadline."""

    def __init__(self, inner: Any, errors: Any, total: float) -> None:
        self._inner, self._errors, self._total = inner, errors, total

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> _Stream:
        timeout = _bound(timeout, self._errors, "ConnectTimeout", self._total)
        stream = self._inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                         socket_options=socket_options)
        return _Stream(stream, self._errors, self._total)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> _Stream:
        timeout = _bound(timeout, self._errors, "ConnectTimeout", self._total)
        return _Stream(self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options),
                       self._errors, self._total)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def arm(client: Any, seconds: float) -> Any:
    """Give every request of the sync `httpx`/`httpx2` `client` a total deadline of
    `seconds` (see the module docstring); returns the client. Raises `TypeError` if
    a transport has no connection pool to wrap, rather than run without a deadline."""
    def stamp(request: Any) -> None:
        _local.deadline = time.monotonic() + seconds

    hooks = client.event_hooks
    hooks["request"] = [*hooks.get("request", []), stamp]
    client.event_hooks = hooks
    transports = [client._transport, *(t for t in client._mounts.values() if t is not None)]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None:
            raise TypeError(f"cannot bound requests of {type(transport).__name__}: no connection pool")
        if isinstance(backend, _Backend):
            continue
        errors = sys.modules[type(pool).__module__.split(".")[0]]  # httpcore or httpcore2: its timeout errors
        pool._network_backend = _Backend(backend, errors, seconds)
    return client
