"""Served models are asked concurrently by default (`CHAT.concurrency`, 16): the
requests overlap at the server, the answers keep the order of the prompts, and
429/503 replies slow every request of the client down (Retry-After honoured, in
seconds and as an HTTP date) while the circuit breaker still opens on a server
that never answers. Real `openai`/`ollama` clients against tests/loopback.py."""

from __future__ import annotations

import email.utils
import time

import pytest

from cai_bench.defaults import CHAT
from cai_bench.models.chat import ChatOptions, GenParams, RetryPolicy
from cai_bench.models.chat.ollama_chat import OllamaChat
from cai_bench.models.chat.openai_chat import OpenAIChat
from cai_bench.models.chat.throttle import Throttle
from loopback import Loopback, Reply

FAST = dict(initial_wait=0.01, max_wait=0.05)


def _echo(body: dict) -> str:
    """The reply names the question it answers (order checks)."""
    return "answer to " + body["messages"][-1]["content"]


def _open(kind: str, lb: Loopback, options: ChatOptions):  # noqa: ANN202
    if kind == "openai":
        return OpenAIChat.open("tiny", ChatOptions(**{**vars(options), "base_url": lb.openai_url, "api_key": "sk-t"}))
    return OllamaChat.open("llama3.1:8b", ChatOptions(**{**vars(options), "base_url": lb.url}))


def _convs(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"question {i}"}] for i in range(n)]


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_default_requests_overlap_and_keep_their_order(kind: str) -> None:
    assert CHAT.concurrency == 16 and ChatOptions().concurrency == 16
    with Loopback(chat_text=_echo, delay=0.2) as lb:
        model = _open(kind, lb, ChatOptions())
        t0 = time.perf_counter()
        out = model.chat(_convs(32), GenParams(max_new_tokens=20))
        took = time.perf_counter() - t0
        model.close()
    assert [c.text for c in out] == [f"answer to question {i}" for i in range(32)]
    assert lb.max_in_flight == 16  # the default, and never more
    assert took < 32 * 0.2 / 4, took  # one at a time would take 6.4 s; 16 at a time about 0.4 s


def test_one_at_a_time_stays_available() -> None:
    with Loopback(chat_text=_echo, delay=0.05) as lb:
        model = _open("openai", lb, ChatOptions(concurrency=1))
        out = model.chat(_convs(6), GenParams(max_new_tokens=20))
        model.close()
    assert [c.text for c in out] == [f"answer to question {i}" for i in range(6)]
    assert lb.max_in_flight == 1


@pytest.mark.parametrize("kind, retry_after", [("openai", "seconds"), ("ollama", "http-date")])
def test_429_retry_after_holds_every_request_back(kind: str, retry_after: str) -> None:
    """The first reply is a 429 asking for a pause: no request of the batch is sent
    during it (not only the refused one), the refused one is retried, all answer in order."""
    # an HTTP date has whole seconds: 3 s ahead leaves at least 1.5 s once the reply is parsed
    pause = 1.0 if retry_after == "seconds" else 1.5
    header = "1" if retry_after == "seconds" else email.utils.formatdate(time.time() + 3, usegmt=True)
    with Loopback(chat_text=_echo, delay=0.3) as lb:
        lb.fail(429, retry_after=header)
        model = _open(kind, lb, ChatOptions(concurrency=4, retry=RetryPolicy(attempts=3, **FAST)))
        out = model.chat(_convs(12), GenParams(max_new_tokens=20))
        model.close()
        requests = lb.chat_requests
    assert [c.text for c in out] == [f"answer to question {i}" for i in range(12)]
    assert len(requests) == 13 and model.throttle.slowed == 1  # the 429 counted, its prompt asked again
    told = requests[0].received + 0.3  # the 429 left the server after its 0.3 s delay
    sent = sorted(r.received - told for r in requests[1:])
    assert sent[:3] == [s for s in sent if s < 0]  # the first 4 went out together, before the 429
    # the 3 answered with the 429 may each send one more before their client reads the 429
    assert len([s for s in sent if 0 <= s < 0.5]) <= 3, sent
    assert not [s for s in sent if 0.5 <= s < pause - 0.1], sent  # then nothing until the pause ends
    assert sent[-1] > pause - 0.1, sent
    assert "429" in (model.throttle.summary() or "")


def test_503_halves_the_requests_in_flight_and_recovers() -> None:
    with Loopback(chat_text=_echo, delay=0.1) as lb:
        lb.fail(503, times=3)
        model = _open("openai", lb, ChatOptions(concurrency=8, retry=RetryPolicy(attempts=4, **FAST)))
        out = model.chat(_convs(24), GenParams(max_new_tokens=20))
        model.close()
    assert [c.text for c in out] == [f"answer to question {i}" for i in range(24)]
    assert model.throttle.slowed == 3 and len(lb.chat_requests) == 27
    assert model.throttle.allowed == 8  # successes let the requests back in


class _Status(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"HTTP {code}")
        self.status_code = code


def test_throttle_lowers_and_restores_what_may_be_in_flight() -> None:
    t = Throttle("test", 16)
    for expect in (8, 4, 2, 1, 1):
        t.done(_Status(503))
        assert t.allowed == expect
    t.done(_Status(500))  # a server error that does not ask to slow down changes nothing
    assert t.allowed == 1 and t.slowed == 5
    for _ in range(20):
        t.done(None)
    assert t.allowed == 16


def test_circuit_still_opens_with_concurrent_requests() -> None:
    """A server that never answers: the parallel first attempts time out together, their
    retries too, then the circuit opens and the rest fail fast instead of timing out."""
    with Loopback() as lb:
        lb.handler = lambda req: Reply(action="silent")
        model = _open("openai", lb, ChatOptions(retry=RetryPolicy(attempts=2, timeout=0.5, **FAST)))
        t0 = time.perf_counter()
        out = model.chat(_convs(64), GenParams(max_new_tokens=20))
        took = time.perf_counter() - t0
        model.close()
    assert all(not c.ok for c in out)
    assert model.circuit.is_open and model.circuit.skipped > 0
    assert any("skipped" in (c.error or "") for c in out)
    assert took < 64 * 2 * 0.5 / 16, took  # without the breaker: every prompt's two attempts
