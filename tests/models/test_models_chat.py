"""The chat-model layer against the shared loopback server (real `openai` and
`ollama` clients): the one retry policy (408/429/5xx, Retry-After, timeouts,
resets, malformed replies), per-conversation errors, endpoint-wide errors,
and the one module that reads endpoint settings."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from cai_bench.models.chat import (
    EndpointError,
    GenParams,
    RetryPolicy,
    backend_class,
    ollama_endpoint,
    openai_endpoint,
)
from cai_bench.models.chat.ollama_chat import OllamaChat
from cai_bench.models.chat.openai_chat import OpenAIChat

FAST = RetryPolicy(attempts=3, timeout=0.5, initial_wait=0.01, max_wait=0.05)
CONV = [{"role": "user", "content": "hi"}]
ROOT = Path(__file__).resolve().parents[2]


def _model(kind: str, loopback, policy: RetryPolicy = FAST, concurrency: int = 1):
    if kind == "openai":
        return OpenAIChat("m", openai_endpoint(loopback.openai_url, "sk-loop"), concurrency=concurrency,
                          retry=policy)
    return OllamaChat("m", ollama_endpoint(loopback.url), concurrency=concurrency, retry=policy)


KINDS = ["openai", "ollama"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", ["429", "500", "503", "408", "hang", "reset", "cut", "truncated", "wrong_schema"])
def test_transient_faults_are_retried_then_answered(kind, fault, loopback):
    inject = {"429": lambda: loopback.fail(429), "500": lambda: loopback.fail(500),
              "503": lambda: loopback.fail(503), "408": lambda: loopback.fail(408),
              "hang": lambda: loopback.hang(2.0), "reset": loopback.reset, "cut": loopback.cut,
              "truncated": loopback.truncated, "wrong_schema": loopback.wrong_schema}[fault]
    inject()
    out = _model(kind, loopback).chat([CONV], GenParams(max_new_tokens=20))
    assert out[0].ok, out[0].error
    assert out[0].text == "Sure, here is how you could do that."
    assert len(loopback.chat_requests) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_is_honoured(kind, loopback):
    loopback.fail(429, retry_after="0.6")
    t0 = time.monotonic()
    out = _model(kind, loopback, RetryPolicy(attempts=2, timeout=2, initial_wait=0.0, max_wait=0.0)).chat(
        [CONV], GenParams())
    assert out[0].ok and time.monotonic() - t0 >= 0.6


@pytest.mark.parametrize("kind", KINDS)
def test_bounded_attempts_then_an_error_for_that_prompt_alone(kind, loopback):
    loopback.fail(503, times=3)  # the first conversation's three attempts (concurrency 1: in order)
    out = _model(kind, loopback).chat([CONV, [{"role": "user", "content": "second"}]], GenParams())
    assert not out[0].ok and "503" in out[0].error and out[0].text == ""
    assert out[1].ok
    assert len(loopback.chat_requests) == 4


@pytest.mark.parametrize("kind", KINDS)
def test_permanent_400_is_not_retried(kind, loopback):
    loopback.fail(400, message="This model's maximum context length is 8 tokens")
    out = _model(kind, loopback).chat([CONV, CONV], GenParams())
    assert not out[0].ok and "400" in out[0].error and "context length" in out[0].error
    assert out[1].ok and len(loopback.chat_requests) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_empty_content_is_an_error_never_an_answer(kind, loopback):
    loopback.empty()
    loopback.empty(null=True)
    out = _model(kind, loopback).chat([CONV, CONV, CONV], GenParams())
    assert [c.ok for c in out] == [False, False, True]
    assert "empty reply" in out[0].error and out[0].text == ""


def test_content_filter_is_an_error(loopback, wire):
    loopback.reply(wire.chat_completion("partial", finish="content_filter"))
    out = _model("openai", loopback).chat([CONV], GenParams())
    assert not out[0].ok and "content filter" in out[0].error


@pytest.mark.parametrize("kind", KINDS)
def test_bad_key_or_unknown_model_stops_the_batch(kind, loopback):
    loopback.fail(401 if kind == "openai" else 404, message="model 'm' not found")
    with pytest.raises(EndpointError):
        _model(kind, loopback).chat([CONV], GenParams())


@pytest.mark.parametrize("kind", KINDS)
def test_unreachable_endpoint_is_one_error(kind):
    if kind == "openai":
        model = OpenAIChat("m", openai_endpoint("http://127.0.0.1:9/v1", "k"), retry=FAST)
    else:
        model = OllamaChat("m", ollama_endpoint("http://127.0.0.1:9"), retry=FAST)
    with pytest.raises(EndpointError, match="cannot reach"):
        model.chat([CONV] * 5, GenParams())


def test_secrets_are_redacted_from_errors(loopback):
    loopback.fail(400, message="bad request for key sk-loop")
    out = _model("openai", loopback).chat([CONV], GenParams())
    assert "sk-loop" not in out[0].error and "***" in out[0].error
    assert "sk-loop" not in repr(openai_endpoint(loopback.openai_url, "sk-loop"))


def test_structured_output_goes_on_the_wire(loopback):
    schema = {"title": "thing", "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
              "additionalProperties": False}
    loopback.chat_text = lambda body: '{"a": 1}'
    _model("openai", loopback).chat([CONV], GenParams(seed=3), json_schema=schema)
    _model("ollama", loopback).chat([CONV], GenParams(seed=3), json_schema=schema)
    oa, ol = loopback.posts("/chat/completions")[0].body, loopback.posts("/api/chat")[0].body
    assert oa["response_format"] == {"type": "json_schema",
                                     "json_schema": {"name": "thing", "schema": schema, "strict": True}}
    assert ol["format"] == schema and oa["seed"] == 3 and ol["options"]["seed"] == 3


def test_settings_explicit_over_environment_over_default(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert openai_endpoint().base_url == "https://api.openai.com/v1" and openai_endpoint().api_key is None
    assert ollama_endpoint().base_url == "http://127.0.0.1:11434"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:1/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OLLAMA_HOST", "http://env:2")
    assert openai_endpoint().base_url == "http://env:1/v1" and openai_endpoint().api_key == "sk-env"
    assert openai_endpoint("http://cfg/v1", "sk-cfg") == openai_endpoint("http://cfg/v1", "sk-cfg")
    assert openai_endpoint("http://cfg/v1", "sk-cfg").api_key == "sk-cfg"
    assert ollama_endpoint("http://cfg:3").base_url == "http://cfg:3"
    with pytest.raises(Exception, match="OPENAI_API_KEY"):
        monkeypatch.delenv("OPENAI_BASE_URL")
        monkeypatch.delenv("OPENAI_API_KEY")
        OpenAIChat("gpt-4o-mini")


def test_backends_are_registered_by_kind():
    from cai_bench.models.registry import kinds

    assert set(kinds()) >= {"hf", "peft", "openai", "ollama"}
    assert backend_class("openai") is OpenAIChat and backend_class("ollama") is OllamaChat
    assert backend_class("openai").structured and not backend_class("hf").structured


def test_endpoint_environment_is_read_in_exactly_one_module():
    """OPENAI_API_KEY, OPENAI_BASE_URL and OLLAMA_HOST are read from the environment only in
    cai_bench/models/chat/settings.py (messages and docstrings may name them)."""
    names = "(OPENAI_API_KEY|OPENAI_BASE_URL|OLLAMA_HOST)"
    read = re.compile(rf"(environ|getenv)[^\n]{{0,12}}{names}|envvar\s*=\s*[\[(]?\W{{0,3}}{names}")
    readers = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "cai_bench").rglob("*.py")
                     if read.search(p.read_text(encoding="utf-8")))
    assert readers == ["cai_bench/models/chat/settings.py"]
