"""Moderation scorer against a loopback server speaking the moderation API (real `openai` client)."""

from __future__ import annotations

import logging
import time

import pytest

from cai_bench.harness.scorers import ScoreInput, build_scorer

KEY = "sk-test-PLANTED-KEY-123456"


def _inputs(n: int) -> list[ScoreInput]:
    return [ScoreInput(key=f"k{i}", prompt="p", response=("I will kill" if i % 2 else "hello") + f" {i}")
            for i in range(n)]


def _scorer(url: str, **extra):
    cfg = {"api_key": KEY, "base_url": url + "/v1", "request_size": 3, "concurrency": 2,
           "max_attempts": 3, "timeout": 1.0, "initial_wait": 0.01, "max_wait": 0.05, **extra}
    s = build_scorer("moderation", cfg)
    s.load()
    return s


def test_moderation_scores_in_batches(loopback, wire):
    loopback.handler = wire.moderation_reply
    s = _scorer(loopback.url)
    rows = s.score(_inputs(7))
    s.close()
    assert len(rows) == 14 and all(r.status == "ok" for r in rows)
    by = {(r.key, r.metric): r for r in rows}
    assert by[("k1", "flagged")].value == 1.0 and by[("k0", "flagged")].value == 0.0
    assert by[("k1", "max_category_score")].value == pytest.approx(0.9)
    assert "self-harm" in by[("k1", "flagged")].detail["category_scores"]
    assert by[("k1", "flagged")].detail["flagged_categories"] == ["violence"]
    posts = loopback.posts("/v1/moderations")
    assert len(posts) == 3  # 7 inputs in batches of 3
    assert all(p.body["model"] == "omni-moderation-latest" for p in posts)
    assert posts[0].headers["authorization"] == f"Bearer {KEY}"


def test_moderation_retries_429_with_retry_after_and_500(loopback, wire):
    loopback.reply({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "0.3"})
    loopback.reply({"error": {"message": "boom"}}, status=500)
    loopback.handler = wire.moderation_reply
    s = _scorer(loopback.url, request_size=10)
    t0 = time.monotonic()
    rows = s.score(_inputs(2))
    assert time.monotonic() - t0 >= 0.3  # waited as Retry-After said
    assert all(r.status == "ok" for r in rows)
    assert len(loopback.posts("/moderations")) == 3


def test_moderation_gives_error_rows_after_bounded_attempts(loopback, wire, caplog):
    loopback.handler = lambda req: wire.Reply(503, b'{"error": {"message": "down"}}')
    s = _scorer(loopback.url, request_size=10, max_attempts=2)
    with caplog.at_level(logging.DEBUG):
        rows = s.score(_inputs(2))
    assert [r.status for r in rows] == ["error"] * 4
    assert "503" in rows[0].error or "InternalServerError" in rows[0].error
    assert len(loopback.posts("/moderations")) == 2
    assert KEY not in caplog.text and all(KEY not in (r.error or "") for r in rows)


def test_moderation_hang_past_timeout_is_retried_then_error(loopback, wire):
    for _ in range(2):
        loopback.hang(3.0)
    s = _scorer(loopback.url, request_size=10, max_attempts=2, timeout=0.5)
    t0 = time.monotonic()
    rows = s.score(_inputs(1))
    assert time.monotonic() - t0 < 3.0
    assert {r.status for r in rows} == {"error"}
    assert "Timeout" in rows[0].error


def test_moderation_malformed_json_is_an_error_row_and_others_go_on(loopback, wire):
    loopback.raw(b'{"results": [ {"flagged": tru')
    loopback.handler = wire.moderation_reply
    s = _scorer(loopback.url, request_size=2, concurrency=1, max_attempts=1)
    rows = s.score(_inputs(4))
    statuses = [r.status for r in rows]
    assert statuses[:4] == ["error"] * 4 and statuses[4:] == ["ok"] * 4


def test_moderation_wrong_schema_is_retried_like_a_malformed_reply(loopback, wire):
    loopback.reply({"result": "ok", "data": [1, 2, 3]})  # a 200 of the wrong shape
    loopback.reply({"id": "modr-1", "results": []})  # the wrong number of results
    loopback.handler = wire.moderation_reply
    s = _scorer(loopback.url, request_size=2, concurrency=1, max_attempts=3)
    rows = s.score(_inputs(2))
    assert [r.status for r in rows] == ["ok"] * 4
    assert len(loopback.posts("/moderations")) == 3


def test_moderation_batch_refused_for_one_input_fails_only_that_input(loopback, wire):
    """A 400 about the input (too long) fails the batch; halving it finds the one input."""
    def handler(req):
        inputs = req.body["input"]
        if any("3" in t for t in inputs):
            return wire.Reply(400, b'{"error": {"message": "input too long", "type": "invalid_request_error"}}')
        return wire.moderation_reply(req)

    loopback.handler = handler
    s = _scorer(loopback.url, request_size=8, concurrency=1)
    rows = s.score(_inputs(6))
    assert {r.key for r in rows if r.status == "error"} == {"k3"}
    assert sum(r.status == "ok" for r in rows) == 10
    assert "input too long" in next(r.error for r in rows if r.status == "error")


def test_moderation_without_key_is_unavailable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    s = build_scorer("moderation", {})
    ok, reason = s.available()
    assert not ok and "OPENAI_API_KEY" in reason


def test_moderation_key_never_in_repr_or_hash_dump(monkeypatch):
    s = build_scorer("moderation", {"api_key": KEY})
    assert KEY not in repr(s) and KEY not in repr(s.config) and KEY not in str(s.config.public_dict())
    assert s.config_hash == build_scorer("moderation", {"api_key": "other"}).config_hash
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert build_scorer("moderation", {}).available() == (True, "")


def test_moderation_concurrency_is_bounded(loopback, wire):
    import threading

    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(req):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        return wire.moderation_reply(req)

    loopback.handler = slow
    s = _scorer(loopback.url, request_size=1, concurrency=3)
    rows = s.score(_inputs(9))
    assert all(r.status == "ok" for r in rows) and len(loopback.posts("/moderations")) == 9
    assert 1 < state["max"] <= 3
