"""`cai-bench generate` through the OpenAI-compatible chat backend against the shared
loopback server, plus kill -9 and resume of a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.models.chat import GenParams, RetryPolicy, openai_endpoint
from cai_bench.models.chat.openai_chat import OpenAIChat
from loopback import Loopback

ROOT = Path(__file__).resolve().parents[2]


def _prompts_file(tmp_path, n):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"How do I get revenge on my neighbour #{i}?"}) + "\n"
                            for i in range(n)))
    return path


def test_generate_cli_openai_backend(tmp_path, loopback, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["generate", "--constitution", "south_africa", "--prompts",
                                   str(_prompts_file(tmp_path, 5)), "--model", "openai:test-model",
                                   "--out", str(out), "--seed", "3", "--no-few-shot", "--concurrency", "2"])
    assert res.exit_code == 0, res.output
    assert "cleaned: meta_preamble" in res.output
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert len(recs) == 5 and len(loopback.chat_requests) == 15
    r = recs[0]
    assert r["revision_response"].startswith("I can't help with that request")
    assert not r["revision_response"].endswith("!")  # trailing offer removed
    assert set(r["cleaning"]) == {"revision_response:meta_preamble", "revision_response:trailing_offer"}
    assert r["generator"] == "openai:test-model" and r["constitution"] == "south_africa"
    # the revision request carries the no-meta-commentary suffix; the chat is one conversation
    last = loopback.chat_requests[-1].body["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[-1]["content"].endswith("respond as the assistant would.")
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["counts"] == {"prompts": 5, "generated": 5, "kept": 5, "dropped": 0, "failed": 0}
    assert info["cleaning"]["cleaned"]["meta_preamble"] == 5
    assert info["splits"]["sft"] == {"train": 4, "test": 1}
    # a re-run does nothing new
    res = CliRunner().invoke(app, ["generate", "--constitution", "south_africa", "--prompts",
                                   str(_prompts_file(tmp_path, 5)), "--model", "openai:test-model",
                                   "--out", str(out), "--seed", "3", "--no-few-shot"])
    assert res.exit_code == 0 and len(loopback.chat_requests) == 15
    # other settings in the same folder are refused with a clear message
    res = CliRunner().invoke(app, ["generate", "--constitution", "south_africa", "--prompts",
                                   str(_prompts_file(tmp_path, 5)), "--model", "openai:test-model",
                                   "--out", str(out), "--seed", "4", "--no-few-shot"])
    assert res.exit_code == 2 and "seed" in res.output


def test_openai_backend_retries_and_truncation(loopback):
    loopback.fail(503, times=2)
    backend = OpenAIChat("m", openai_endpoint(loopback.openai_url), concurrency=2,
                         retry=RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05))
    out = backend.chat([[{"role": "user", "content": "Please rewrite it"}]], GenParams(max_new_tokens=5))
    assert len(loopback.chat_requests) == 3  # two 503s, then success
    assert out[0].finish_reason == "length" and out[0].tokens == 5


def test_unreachable_server_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    res = CliRunner().invoke(app, ["generate", "--constitution", "south_africa", "--prompts",
                                   str(_prompts_file(tmp_path, 1)), "--model", "openai:m", "--out",
                                   str(tmp_path / "o"), "--no-few-shot"])
    assert res.exit_code == 2
    assert "cannot reach" in res.output


def test_kill_and_resume(tmp_path):
    n = 24
    prompts = _prompts_file(tmp_path, n)
    out = tmp_path / "out"
    records = out / "records.jsonl"
    cmd = [str(ROOT / ".venv" / "bin" / "cai-bench"), "-q", "generate", "--constitution", "south_africa",
           "--prompts", str(prompts), "--model", "openai:m", "--out", str(out), "--no-few-shot",
           "--batch-size", "2", "--concurrency", "1"]
    if not Path(cmd[0]).exists():
        cmd[0:1] = [sys.executable, "-m", "cai_bench"]
    with Loopback(delay=0.03) as srv:
        env = {**os.environ, "OPENAI_BASE_URL": srv.openai_url}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline:
            if records.exists() and records.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = records.read_bytes()
        done = data.count(b"\n")
        assert 4 <= done < n, "the kill should land mid-run"
        for line in data.splitlines(keepends=True):  # only complete, valid lines
            if line.endswith(b"\n"):
                json.loads(line)
        # simulate the worst case as well: a torn last line
        with open(records, "ab") as f:
            f.write(b'{"id": "q99", "init_pro')
        before = len(srv.chat_requests)
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert len(srv.chat_requests) - before == 3 * (n - done)  # only unfinished prompts were redone
    ids = [json.loads(x)["id"] for x in records.read_text().splitlines()]
    assert sorted(ids) == sorted(f"q{i}" for i in range(n)) and len(ids) == len(set(ids))
    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(records), split="train")
    assert ds.num_rows == n


def test_random_selection_same_seed_twice(tmp_path, loopback, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    prompts = str(_prompts_file(tmp_path, 8))
    picks = []
    for run, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        out = tmp_path / run
        res = CliRunner().invoke(app, ["generate", "--constitution", "south_africa", "--prompts", prompts,
                                       "--model", "openai:m", "--out", str(out), "--seed", seed, "--no-few-shot"])
        assert res.exit_code == 0, res.output
        picks.append([json.loads(x)["principle_id"] for x in (out / "records.jsonl").read_text().splitlines()])
    assert picks[0] == picks[1] and picks[0] != picks[2]


def test_generate_with_the_constitutions_few_shot_context(tmp_path, loopback, monkeypatch):
    """Few-shot on (the default): every call starts with the constitution's example chats,
    the records keep only the real prompt."""
    from cai_bench.constitutions import load_constitution

    shots = [m for chat in load_constitution("anthropic").few_shot for m in chat]
    assert shots, "the anthropic constitution ships few-shot chats"
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["generate", "--constitution", "anthropic", "--prompts",
                                   str(_prompts_file(tmp_path, 2)), "--model", "openai:test-model",
                                   "--out", str(out), "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert len(loopback.chat_requests) == 6
    for req in loopback.chat_requests:
        msgs = req.body["messages"]
        assert [(m["role"], m["content"]) for m in msgs[:len(shots)]] == [(m["role"], m["content"]) for m in shots]
        assert msgs[len(shots)]["content"].startswith("How do I get revenge on my neighbour #")
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert len(recs) == 2 and all(r["prompt"].startswith("How do I get revenge") for r in recs)
    assert not any(shots[0]["content"] in json.dumps(r) for r in recs)


def test_generate_faults_become_errors_and_a_rerun_fills_them(tmp_path, loopback, monkeypatch):
    """Issue 13 §4 for `generate`: a 429 with Retry-After is retried; a prompt that fails
    for good (400, null content, 503s past the attempts) is listed in errors.jsonl and left
    out, the others are written; a re-run asks only for the failed ones."""
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    out = tmp_path / "out"
    args = ["generate", "--constitution", "south_africa", "--prompts", str(_prompts_file(tmp_path, 4)),
            "--model", "openai:m", "--out", str(out), "--no-few-shot", "--concurrency", "1", "--batch-size", "4",
            "--max-attempts", "2"]
    loopback.fail(429, retry_after="0.1")  # q0's first step: retried
    loopback.ok()
    loopback.fail(400, message="maximum context length exceeded")  # q1 init: for good
    loopback.empty(null=True)  # q2 init: null content
    loopback.fail(503, times=2)  # q3 init: past the attempts
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "failed" in res.output
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs] == ["q0"] and recs[0]["revision_response"]
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert {e["id"]: e["step"] for e in errors} == {"q1": "init", "q2": "init", "q3": "init"}
    assert "400" in errors[0]["error"] and "empty reply" in errors[1]["error"] and "503" in errors[2]["error"]
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["counts"]["failed"] == 3 and info["counts"]["generated"] == 1
    before = len(loopback.chat_requests)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert len(loopback.chat_requests) - before == 3 * 3  # three steps for each failed prompt, nothing else
    assert sorted(json.loads(x)["id"] for x in (out / "records.jsonl").read_text().splitlines()) == \
        ["q0", "q1", "q2", "q3"]
    assert not (out / "errors.jsonl").exists()


def test_synthesize_counts_failed_requests_and_asks_again(tmp_path, home, loopback, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    const = tmp_path / "tiny.yaml"
    const.write_text("id: tiny_culture\nname: Tiny\nculture: TC\nlicense: MIT\nprinciples:\n"
                     "  - id: equality\n    title: Equality\n    description: Nobody is ranked by origin.\n")
    loopback.fail(400, message="content filter triggered")
    res = CliRunner().invoke(app, ["tasks", "synthesize", "tiny_faults", "--constitution", str(const),
                                   "--model", "openai:writer", "--per-principle", "2", "--retries", "1",
                                   "--max-attempts", "1"])
    assert res.exit_code == 0, res.output
    assert "1 failed requests" in res.output and len(loopback.chat_requests) == 2  # asked again, then written
    from cai_bench.tasks import load_task

    assert len(load_task("tiny_faults").prompts) == 2
