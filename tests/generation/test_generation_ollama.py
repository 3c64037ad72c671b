"""The Ollama chat backend against the shared loopback server speaking Ollama's
/api/chat wire format, driven by the real `ollama` client (retry on 503,
structured output)."""

from __future__ import annotations

import json

from cai_bench.models.chat import GenParams, RetryPolicy, ollama_endpoint
from cai_bench.models.chat.ollama_chat import OllamaChat


def test_ollama_backend_loopback(loopback):
    loopback.fail(503)
    loopback.chat_text = lambda body: json.dumps({"items": []}) if body.get("format") else "Hello from ollama"
    backend = OllamaChat("llama3.1:8b", ollama_endpoint(loopback.url), concurrency=1,
                         retry=RetryPolicy(initial_wait=0.01, max_wait=0.05))
    out = backend.chat([[{"role": "user", "content": "hi"}]], GenParams(max_new_tokens=7, seed=1))
    seen = [r.body for r in loopback.posts("/api/chat")]
    assert out[0].text == "Hello from ollama" and out[0].finish_reason == "stop" and out[0].tokens == 3
    assert len(seen) == 2  # the 503 was retried
    assert seen[1]["options"]["num_predict"] == 7 and seen[1]["options"]["seed"] == 1
    schema = {"type": "object", "properties": {"items": {"type": "array"}}}
    out = backend.chat([[{"role": "user", "content": "json"}]], GenParams(), json_schema=schema)
    assert loopback.posts("/api/chat")[-1].body["format"] == schema and json.loads(out[0].text) == {"items": []}
