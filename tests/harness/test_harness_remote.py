"""`openai:` and `ollama:` checkpoints in `run` through the chat layer (real
`openai` and `ollama` clients), against the shared loopback server speaking
their wire formats (no model loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from loopback import Loopback


def _declines(body: dict) -> str:
    return f"I must decline: {body['messages'][-1]['content'][:20]}"


@pytest.fixture()
def server(loopback):
    loopback.chat_text = _declines
    return loopback


def _run(out: Path, spec: str) -> str:
    res = CliRunner().invoke(app, ["run", "--checkpoint", spec, "--task", "cai_south_africa", "--limit", "3",
                                   "--max-new-tokens", "12", "--scorer", "similarity", "--out", str(out),
                                   "--no-report"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_openai_checkpoint_through_chat_layer(tmp_path: Path, server: Loopback, monkeypatch, minilm_dir) -> None:  # noqa: ANN001
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    text = _run(tmp_path, "openai:tiny-chat")
    assert "new: 3 responses, 3 scored" in text
    paths = {r.path for r in server.requests}
    assert paths == {"/v1/chat/completions"} and len(server.requests) == 3
    headers, body = server.requests[0].headers, server.requests[0].body
    assert headers["authorization"] == "Bearer sk-test"
    assert body["model"] == "tiny-chat" and body["max_tokens"] == 12 and body["temperature"] == 0
    import sqlite3

    con = sqlite3.connect(tmp_path / "results.sqlite")
    responses = [r for (r,) in con.execute("select response from generations")]
    kind = con.execute("select kind from checkpoints").fetchone()[0]
    con.close()
    assert kind == "openai" and all(r.startswith("I must decline") for r in responses)
    again = _run(tmp_path, "openai:tiny-chat")
    assert "generation models loaded: 0" in again and len(server.requests) == 3


def test_ollama_checkpoint_through_client(tmp_path: Path, server: Loopback, monkeypatch, minilm_dir) -> None:  # noqa: ANN001
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    text = _run(tmp_path, "ollama:tiny")
    assert "new: 3 responses, 3 scored" in text
    assert [r.path for r in server.requests] == ["/api/chat"] * 3
    body = server.requests[0].body
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
    with Loopback(_declines) as first, Loopback(_declines) as second:
        for srv in (first, second):
            cfg = tmp_path / "run.yaml"
            cfg.write_text(f"ollama: {{base_url: '{srv.url}'}}\n")
            res = CliRunner().invoke(app, ["run", str(cfg), "-c", "ollama:tiny", "-t", "cai_south_africa",
                                           "-n", "2", "-s", "similarity", "-o", str(tmp_path), "--no-report"])
            assert res.exit_code == 0, res.output + repr(res.exception)
            assert "new: 2 responses" in res.output
    assert len(first.requests) == 2 and len(second.requests) == 2
    import sqlite3

    con = sqlite3.connect(tmp_path / "results.sqlite")
    rows = con.execute("select fingerprint, metadata_json from checkpoints").fetchall()
    con.close()
    assert len({fp for fp, _ in rows}) == 2
    assert sorted(json.loads(m)["base_url"] for _, m in rows) == sorted([first.url, second.url])


def test_faults_become_error_rows_and_a_rerun_fills_them(tmp_path: Path, loopback: Loopback, monkeypatch) -> None:  # noqa: ANN001
    """Issue 13 §4: a served checkpoint's transient faults are retried (429 + Retry-After);
    a prompt that fails for good (400, an empty reply, 503s past the attempts) is an error
    row for that prompt alone and the run completes; the judge's transport failures are
    error rows too; a plain re-run (no --force) fills both."""
    import sqlite3

    from loopback import Reply, error_body

    verdict = json.dumps({"helpfulness": 6, "harmlessness": 9, "adherence": 7, "refused": True, "rationale": "ok"})
    loopback.chat_text = lambda body: verdict if body.get("format") else _declines(body)
    judge_down = {"on": True}

    def handler(req):  # noqa: ANN001, ANN202
        if req.path == "/api/chat" and judge_down["on"]:
            return Reply(503, error_body(req.path, 503, "judge overloaded"))
        return loopback.default(req)

    loopback.handler = handler
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    monkeypatch.setenv("OLLAMA_HOST", loopback.url)
    cfg = tmp_path / "run.yaml"
    # one request at a time: the faults below are scripted for the prompts in order
    cfg.write_text("openai: {max_attempts: 2, timeout: 5, num_concurrent: 1}\n"
                   "scorers: [{id: judge, max_attempts: 2, initial_wait: 0.01, max_wait: 0.02}]\n")
    loopback.fault_path = "/chat/completions"  # the judge's availability probe must not take a fault
    loopback.fail(429, retry_after="0.1")  # prompt 1: retried, then answered
    loopback.ok()
    loopback.fail(400, message="This model's maximum context length is 16 tokens")  # prompt 2: for good
    loopback.empty(null=True)  # prompt 3: null content is an error, never a stored answer
    loopback.fail(503, times=2)  # prompt 4: past the attempts
    args = ["run", str(cfg), "-c", "openai:tiny", "-t", "cai_south_africa", "-n", "4", "--limit-mode", "head",
            "-o", str(tmp_path), "--no-report"]
    if "--limit-mode" not in CliRunner().invoke(app, ["run", "--help"]).output:
        args.remove("--limit-mode")
        args.remove("head")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "new: 1 responses" in res.output and "failed: 3 prompts" in res.output
    con = sqlite3.connect(tmp_path / "results.sqlite")
    assert [r for (r,) in con.execute("select response from generations")] == [
        r.body and _declines(r.body) for r in loopback.posts("/chat/completions")[1:2]]
    errors = dict(con.execute("select prompt_id, error from generation_errors").fetchall())
    assert len(errors) == 3 and sum("400" in e and "context length" in e for e in errors.values()) == 1
    assert sum("empty reply" in e for e in errors.values()) == 1 and sum("503" in e for e in errors.values()) == 1
    assert con.execute("select distinct status from scores").fetchall() == [("error",)]
    con.close()

    judge_down["on"] = False
    before = len(loopback.posts("/chat/completions"))
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "new: 3 responses" in res.output and "failed:" not in res.output
    assert len(loopback.posts("/chat/completions")) - before == 3  # only the failed prompts were asked again
    con = sqlite3.connect(tmp_path / "results.sqlite")
    assert con.execute("select count(*) from generation_errors").fetchone() == (0,)
    assert con.execute("select count(*) from generations where response = ''").fetchone() == (0,)
    assert con.execute("select status, count(*) from scores group by status").fetchall() == [("ok", 16)]
    con.close()
