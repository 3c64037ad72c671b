"""What the served backends share: send a batch with bounded concurrency, each
call under the retry policy, and sort the failures into per-conversation
error completions and endpoint-wide `EndpointError`s."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from cai_bench.models.chat.base import Completion, Conversation, EndpointError
from cai_bench.models.chat.circuit import Circuit, CircuitOpen
from cai_bench.models.chat.retry import RetryPolicy, call_with_retries, describe, is_unreachable, status_of
from cai_bench.models.chat.settings import Endpoint
from cai_bench.models.chat.throttle import Throttle

log = logging.getLogger("cai_bench.chat")
ENDPOINT_STATUS = frozenset({401, 403, 404})  # bad key, no access, unknown model or path: nothing will work


def run_batch(one: Callable[[Conversation], Completion], batch: Sequence[Conversation], *, name: str,
              endpoint: Endpoint, policy: RetryPolicy, concurrency: int,
              circuit: Circuit | None = None, throttle: Throttle | None = None) -> list[Completion]:
    """`one(conv)` for every conversation, in order, up to `concurrency` at a time (the
    client's `throttle` lowers that while the server answers 429/503). A conversation whose
    calls all fail becomes `Completion.failed(reason)`; if the endpoint itself is at fault,
    `EndpointError` is raised once every call has finished. With the client's
    `circuit` open (the endpoint stopped answering), the rest fail fast with its reason."""
    fatal: list[str] = []

    def guarded(conv: Conversation) -> Completion:
        if fatal:  # the endpoint is down: do not spend the retry budget on every prompt
            return Completion.failed(fatal[0])
        try:
            return call_with_retries(lambda: one(conv), policy, what=f"{name} request", circuit=circuit,
                                     throttle=throttle)
        except Exception as exc:  # noqa: BLE001 - sorted below: per-prompt error or endpoint fault
            if isinstance(exc, CircuitOpen):  # the endpoint stopped answering; if it never did, it is down
                if circuit is None or circuit.cause is None or not is_unreachable(circuit.cause):
                    return Completion.failed(str(exc))
                exc = circuit.cause
            reason = describe(exc, endpoint.api_key)
            if is_unreachable(exc):
                fatal.append(f"{name}: cannot reach {endpoint.base_url} ({reason})")
            elif status_of(exc) in ENDPOINT_STATUS:
                fatal.append(f"{name} at {endpoint.base_url}: {reason}")
            return Completion.failed(reason)

    if not batch:
        return []
    slowed = throttle.slowed if throttle is not None else 0
    workers = max(1, min(concurrency, len(batch)))
    if workers == 1:
        out = [guarded(c) for c in batch]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            out = list(pool.map(guarded, batch))
    if throttle is not None and throttle.slowed > slowed:
        log.info("%s", throttle.summary())
    if fatal:
        raise EndpointError(fatal[0])
    return out
