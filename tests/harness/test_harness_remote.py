"""`openai:` checkpoints through lm-eval's OpenAI-compatible chat backend and
`ollama:` checkpoints through the ollama client, against loopback servers that
speak the real wire formats (no model loaded)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app


class _Server:
    """Answers POST /v1/chat/completions (OpenAI) and /api/chat (Ollama); records bodies."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests.append((self.path, dict(self.headers), body))
                prompt = body["messages"][-1]["content"]
                text = f"I must decline: {prompt[:20]}"
                if self.path.endswith("/chat/completions"):
                    payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": text}}],
                               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                elif self.path == "/api/chat":
                    payload = {"model": body["model"], "created_at": "2026-01-01T00:00:00Z",
                               "message": {"role": "assistant", "content": text}, "done": True}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture()
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.httpd.shutdown()


def _run(out: Path, spec: str) -> str:
    res = CliRunner().invoke(app, ["run", "--checkpoint", spec, "--task", "cai_south_africa", "--limit", "3",
                                   "--max-new-tokens", "12", "--scorer", "similarity", "--out", str(out),
                                   "--no-report"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_openai_checkpoint_through_lm_eval(tmp_path: Path, server: _Server, monkeypatch, minilm_dir) -> None:  # noqa: ANN001
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    text = _run(tmp_path, "openai:tiny-chat")
    assert "new: 3 responses, 3 scored" in text
    paths = {p for p, _, _ in server.requests}
    assert paths == {"/v1/chat/completions"} and len(server.requests) == 3
    _, headers, body = server.requests[0]
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "tiny-chat" and body["max_tokens"] == 12 and body["temperature"] == 0
    import sqlite3

    con = sqlite3.connect(tmp_path / "results.sqlite")
    responses = [r for (r,) in con.execute("select response from generations")]
    kind = con.execute("select kind from checkpoints").fetchone()[0]
    con.close()
    assert kind == "openai" and all(r.startswith("I must decline") for r in responses)
    again = _run(tmp_path, "openai:tiny-chat")
    assert "generation models loaded: 0" in again and len(server.requests) == 3


def test_ollama_checkpoint_through_client(tmp_path: Path, server: _Server, monkeypatch, minilm_dir) -> None:  # noqa: ANN001
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    text = _run(tmp_path, "ollama:tiny")
    assert "new: 3 responses, 3 scored" in text
    assert [p for p, _, _ in server.requests] == ["/api/chat"] * 3
    body = server.requests[0][2]
    assert body["model"] == "tiny" and body["options"]["num_predict"] == 12


def test_unreachable_endpoint_is_one_line_error(tmp_path: Path, monkeypatch, minilm_dir) -> None:  # noqa: ANN001
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # nothing listens there
    res = CliRunner().invoke(app, ["run", "-c", "ollama:tiny", "-t", "cai_south_africa", "-n", "1",
                                   "-s", "similarity", "-o", str(tmp_path), "--no-report"])
    assert res.exit_code == 2, res.output
    assert "ollama:tiny" in res.output and "Traceback" not in res.output
    import sqlite3

    con = sqlite3.connect(tmp_path / "results.sqlite")
    assert con.execute("select status from runs").fetchall() == [("failed",)]
    con.close()


def test_config_endpoint_is_part_of_the_fingerprint(tmp_path: Path, monkeypatch, minilm_dir) -> None:  # noqa: ANN001
    """The same `ollama:` model behind two hosts named in run configs is two checkpoints:
    the second run must not reuse the first host's responses."""
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # the config must win over this
    first, second = _Server(), _Server()
    try:
        for srv in (first, second):
            cfg = tmp_path / "run.yaml"
            cfg.write_text(f"ollama: {{base_url: '{srv.url}'}}\n")
            res = CliRunner().invoke(app, ["run", str(cfg), "-c", "ollama:tiny", "-t", "cai_south_africa",
                                           "-n", "2", "-s", "similarity", "-o", str(tmp_path), "--no-report"])
            assert res.exit_code == 0, res.output + repr(res.exception)
            assert "new: 2 responses" in res.output
    finally:
        first.httpd.shutdown()
        second.httpd.shutdown()
    assert len(first.requests) == 2 and len(second.requests) == 2
    import sqlite3

    con = sqlite3.connect(tmp_path / "results.sqlite")
    rows = con.execute("select fingerprint, metadata_json from checkpoints").fetchall()
    con.close()
    assert len({fp for fp, _ in rows}) == 2
    assert sorted(json.loads(m)["base_url"] for _, m in rows) == sorted([first.url, second.url])
