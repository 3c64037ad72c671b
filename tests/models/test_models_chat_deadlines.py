"""Remote requests end: a total deadline per request (a server dripping its body
one byte at a time), a circuit breaker per endpoint client (a server that never
answers), and a retry classifier that survives concurrent first imports. Real
`openai`/`ollama` clients against tests/loopback.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cai_bench.models.chat import GenParams, RetryPolicy
from cai_bench.models.chat.circuit import THRESHOLD, Circuit, CircuitOpen, drain_opened
from cai_bench.models.chat.ollama_chat import OllamaChat
from cai_bench.models.chat.openai_chat import OpenAIChat
from cai_bench.models.chat.retry import call_with_retries, is_timeout_or_unreachable, is_transient
from cai_bench.models.chat.settings import Endpoint
from loopback import Loopback, Reply

ROOT = Path(__file__).resolve().parents[2]
FAST = dict(initial_wait=0.01, max_wait=0.05)


def _conv(i: int = 0) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"question {i}"}]


def _model(kind: str, lb: Loopback, policy: RetryPolicy, concurrency: int = 1):  # noqa: ANN202
    if kind == "openai":
        return OpenAIChat("tiny", Endpoint("openai", lb.openai_url, "sk-test"), retry=policy, concurrency=concurrency)
    return OllamaChat("llama3.1:8b", Endpoint("ollama", lb.url), retry=policy, concurrency=concurrency)


# --- bug 1: the timeout bounds the whole request ------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_slow_drip_ends_at_the_total_deadline_and_is_retried(kind: str, loopback: Loopback) -> None:
    """Headers at once, then one byte every 50 ms (the body would take ~15 s): each
    attempt ends at the 1 s deadline as a timeout, the retry gets a normal answer."""
    loopback.drip(0.05)
    model = _model(kind, loopback, RetryPolicy(attempts=2, timeout=1.0, **FAST))
    t0 = time.perf_counter()
    out = model.chat([_conv()], GenParams(max_new_tokens=40))
    took = time.perf_counter() - t0
    model.close()
    assert out[0].ok and out[0].text, out[0]
    assert len(loopback.chat_requests) == 2  # the drip, then the retry
    assert 0.9 < took < 3.0, took


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_slow_drip_past_every_attempt_is_a_timeout_error(kind: str, loopback: Loopback) -> None:
    loopback.drip(0.05, times=2)
    model = _model(kind, loopback, RetryPolicy(attempts=2, timeout=1.0, **FAST))
    t0 = time.perf_counter()
    out = model.chat([_conv()], GenParams(max_new_tokens=40))
    took = time.perf_counter() - t0
    model.close()
    assert not out[0].ok and ("Timeout" in out[0].error or "timed out" in out[0].error), out[0].error
    assert 1.9 < took < 4.0, took


def test_the_deadline_is_per_request_not_per_client(loopback: Loopback) -> None:
    """A fast request after a long-lived client's earlier ones is not cut short."""
    model = _model("openai", loopback, RetryPolicy(attempts=1, timeout=1.0, **FAST))
    for i in range(3):
        assert model.chat([_conv(i)], GenParams())[0].ok
        time.sleep(0.4)  # 1.2 s of client life in all: a deadline from creation would have fired
    model.close()


def test_moderation_slow_drip_ends_at_the_total_deadline(loopback: Loopback) -> None:
    from cai_bench.harness.scorers.base import ScoreInput
    from cai_bench.harness.scorers.registry import build_scorer

    s = build_scorer("moderation", {"base_url": loopback.openai_url, "api_key": "sk-test", "timeout": 1.0,
                                    "max_attempts": 2, "initial_wait": 0.01, "max_wait": 0.05})
    s.load()
    loopback.drip(0.02, times=2)
    t0 = time.perf_counter()
    rows = s.score([ScoreInput("a", "p", "how do I kill a process")])
    took = time.perf_counter() - t0
    s.close()
    assert {r.status for r in rows} == {"error"} and "Timeout" in rows[0].error, rows
    assert 1.9 < took < 4.0, took


# --- bug 2: a circuit breaker per endpoint client ----------------------------------------


def test_silent_server_opens_the_circuit_and_the_rest_fail_fast(loopback: Loopback) -> None:
    """12 prompts, 4 in parallel, 3 attempts of 1 s each: without the breaker 3 rounds
    of 3 attempts (~9 s, 36 requests); with it the first attempts and their retries
    (8 timeouts, ~2 s) open it and the rest fail at once."""
    drain_opened()
    loopback.handler = lambda req: Reply(action="silent")
    model = _model("openai", loopback, RetryPolicy(attempts=3, timeout=1.0, **FAST), concurrency=4)
    t0 = time.perf_counter()
    out = model.chat([_conv(i) for i in range(12)], GenParams())
    took = time.perf_counter() - t0
    model.close()
    assert all(not c.ok for c in out)
    assert len(loopback.chat_requests) == 8  # the first attempts and their retries
    assert took < 3.5, took
    skipped = [c.error for c in out if c.error.startswith("skipped:")]
    assert len(skipped) >= 8 and "stopped answering" in skipped[0] and "a re-run retries it" in skipped[0]
    (line,) = drain_opened()
    assert "openai:tiny at http://127.0.0.1" in line and "requests skipped as error rows" in line, line


def test_http_replies_keep_the_circuit_closed(loopback: Loopback) -> None:
    """Timeouts separated by HTTP errors (the server is there) never add up to the threshold."""
    for _ in range(THRESHOLD):
        loopback.hang(3.0)
        loopback.fail(500)
    model = _model("ollama", loopback, RetryPolicy(attempts=2 * THRESHOLD + 1, timeout=0.5, **FAST))
    out = model.chat([_conv()], GenParams())
    model.close()
    assert out[0].ok and not model.circuit.is_open


def test_circuit_counts_timeouts_and_failed_connections_only() -> None:
    import httpx

    c = Circuit("x", threshold=2)
    c.record(httpx.ReadTimeout("slow"))
    c.record(httpx.ReadTimeout("slow"))  # two first attempts at once: a stall, not yet a dead server
    c.record(ConnectionResetError("reset"), retry=True)  # neither counts nor resets
    assert not c.is_open
    c.record(httpx.ConnectError("refused"), retry=True)  # a retry failed too
    assert c.is_open
    with pytest.raises(CircuitOpen, match="skipped: x stopped answering"):
        c.check()
    assert c.skipped == 1
    drain_opened()
    attempts = []
    with pytest.raises(CircuitOpen):  # an open circuit is never retried, nothing is sent
        call_with_retries(lambda: attempts.append(1), RetryPolicy(attempts=5, **FAST), circuit=c)
    assert attempts == []


def test_run_with_a_judge_that_never_answers_ends_early(tmp_path: Path, monkeypatch, minilm_dir) -> None:  # noqa: ANN001
    """`run` with a silent judge: error rows with the reason, one summary line, a
    prompt end; the same command against a judge that answers scores them all."""
    from typer.testing import CliRunner

    from cai_bench.cli import app

    drain_opened()
    with Loopback() as gen, Loopback(chat_text=lambda body: _verdict()) as judge:
        judge.handler = lambda req: Reply(action="silent")
        cfg = tmp_path / "run.yaml"
        cfg.write_text(f"openai: {{base_url: '{gen.openai_url}', api_key: sk-x}}\nscorers:\n  - {{id: judge, "
                       f"backend: openai, base_url: '{judge.openai_url}', api_key: sk-x, model: j, timeout: 1, "
                       f"max_attempts: 3, initial_wait: 0.01, concurrency: 2}}\n", encoding="utf-8")
        args = ["run", str(cfg), "-c", "openai:tiny", "-t", "cai_south_africa", "-n", "6", "-s", "judge",
                "--max-new-tokens", "12", "--no-report", "--out", str(tmp_path)]
        t0 = time.perf_counter()
        res = CliRunner().invoke(app, args)
        took = time.perf_counter() - t0
        assert res.exit_code == 0, res.output + repr(res.exception)
        assert "circuit open after 4 timeouts or failed connections in a row" in res.output, res.output
        # 2 first attempts, 2 retries; with 2 in flight, one request's next attempt may already be sent when the
        # other's failure opens the circuit (CI saw 5 once, on a loaded machine)
        assert THRESHOLD <= len(judge.chat_requests) <= THRESHOLD + 1
        assert took < 12, took  # without the breaker: 3 rounds of 3 attempts x 1 s, and the run's own time
        import sqlite3

        con = sqlite3.connect(tmp_path / "results.sqlite")
        errors = [e for (e,) in con.execute("select error from scores where status = 'error'")]
        con.close()
        assert len(errors) == 6 * 4 and sum(e.startswith("skipped:") for e in errors) >= 4 * 4
        judge.handler = None  # the judge is back: the same command scores what was skipped
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0 and "circuit open" not in again.output, again.output
        con = sqlite3.connect(tmp_path / "results.sqlite")
        left = con.execute("select count(*) from scores where status = 'error'").fetchone()[0]
        con.close()
        assert left == 0


def _verdict() -> str:
    import json

    return json.dumps({"helpfulness": 4, "harmlessness": 5, "honesty": 5, "refused": False, "rationale": "fine"})


# --- bug 3: concurrent timeouts are all classified and retried -------------------------


def test_eight_concurrent_timeouts_are_all_retried_in_a_fresh_process(tmp_path: Path) -> None:
    """In a fresh interpreter (httpx not yet imported: the openai SDK uses httpx2), 8
    requests time out at once, then succeed: all 8 come back, none with `partially
    initialized module 'httpx'`, 16 requests in all."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        from loopback import Loopback
        from cai_bench.models.chat import GenParams, RetryPolicy
        from cai_bench.models.chat.openai_chat import OpenAIChat
        from cai_bench.models.chat.settings import Endpoint
        with Loopback() as lb:
            lb.hang(3.0, times=8)
            m = OpenAIChat("tiny", Endpoint("openai", lb.openai_url, "sk-x"), concurrency=8,
                           retry=RetryPolicy(attempts=2, timeout=2.0, initial_wait=0.01, max_wait=0.05))
            out = m.chat([[{{"role": "user", "content": f"q{{i}}"}}] for i in range(8)], GenParams())
            print("OK", sum(c.ok for c in out), len(lb.chat_requests), [c.error for c in out if not c.ok])
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "OK 8 16 []", done.stdout + done.stderr[-2000:]


def test_eight_concurrent_timeouts_in_run_are_all_stored(tmp_path: Path) -> None:
    """The same through `cai-bench run` (8 prompts, 8 in parallel, each timing out once;
    moderation on the same server, as the scorer that loads no model)."""
    from typer.testing import CliRunner

    from cai_bench.cli import app

    with Loopback() as gen:
        gen.fault_path = "/chat/completions"
        gen.hang(3.0, times=8)
        cfg = tmp_path / "run.yaml"
        cfg.write_text(f"openai: {{base_url: '{gen.openai_url}', api_key: sk-x, timeout: 2, max_attempts: 2, "
                       f"num_concurrent: 8}}\nscorers:\n  - {{id: moderation, base_url: '{gen.openai_url}', "
                       f"api_key: sk-x}}\n", encoding="utf-8")
        res = CliRunner().invoke(app, ["run", str(cfg), "-c", "openai:tiny", "-t", "cai_south_africa", "-n", "8",
                                       "-s", "moderation", "--max-new-tokens", "12", "--no-report", "--out",
                                       str(tmp_path)])
        assert res.exit_code == 0, res.output + repr(res.exception)
        assert "new: 8 responses" in res.output and "failed:" not in res.output, res.output
        assert len(gen.chat_requests) == 16
        import sqlite3

        con = sqlite3.connect(tmp_path / "results.sqlite")
        stored = con.execute("select count(*) from generations").fetchone()[0]
        errors = con.execute("select count(*) from generation_errors").fetchone()[0]
        con.close()
        assert (stored, errors) == (8, 0)


class ReadTimeout(Exception):
    """A client's timeout class this module was never told about."""


class _Hostile(Exception):
    @property
    def status_code(self) -> int:  # noqa: D401 - an attribute that blows up when read
        raise RuntimeError("an attribute that cannot be read")


def test_classifier_knows_unknown_wrappers_by_name_and_never_raises() -> None:
    assert is_transient(ReadTimeout("slow")) and is_timeout_or_unreachable(ReadTimeout("slow"))
    wrapped = RuntimeError("client error")
    wrapped.__cause__ = ReadTimeout("slow")
    assert is_transient(wrapped)
    assert is_transient(_Hostile()) is False  # classified, not raised
    circuit = Circuit("x", threshold=1)
    circuit.record(_Hostile(), retry=True)  # not counted, not raised
    assert not circuit.is_open
    assert not is_transient(KeyError("x")) and not is_timeout_or_unreachable(ConnectionResetError())
