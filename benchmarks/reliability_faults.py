"""Loopback faults for every remote path of cai-bench (issue 13 section 7).

Each path is driven through the real CLI (a forked process, as the kill -9
campaign does) against tests/loopback.py, which speaks the real OpenAI
(`/v1/chat/completions`, `/v1/moderations`) and Ollama (`/api/chat`,
`/api/tags`) protocols to the real `openai` and `ollama` clients:

    run -c openai:...            generation of the model under test (OpenAI-compatible)
    run -c ollama:...            the same through Ollama
    run -s moderation            the moderation scorer (its `base_url` at the loopback)
    score FILE -s moderation     the same scorer on a file of responses (no store)
    run -s judge                 the judge with `backend: openai`, and with `backend: ollama`
    generate -m openai:/ollama:  CAI data (initial -> critique -> revision)
    tasks synthesize -m ...      a red-team task written by a served model

Every fault kind (429 with Retry-After, 500, 503, a hang past the timeout, a
TCP reset, truncated JSON, a 200 of the wrong schema) is queued, in a seeded
order, `ATTEMPTS` times in a row on the path under test (the client's
`max_attempts`), so each one outlasts the retry policy and costs exactly one
unit of work (a prompt, a response to score, a principle). The first command
must complete (exit 0) with those units recorded as failed; the same command
run again must fill them: 0 failed left, 0 duplicated.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASK = "cai_south_africa"
FAULTS = ("429", "500", "503", "hang", "reset", "truncated", "wrong_schema")
ATTEMPTS = 2  # max_attempts of every client here
TIMEOUT = 2.0  # seconds per request (loose enough for a loaded CI machine answering from loopback)
HANG = 5.0  # a hang lasts longer than TIMEOUT
CLEAN = 2  # units with no fault, beside one per fault
PATHS = ("run openai", "run ollama", "run moderation", "score moderation", "run judge openai",
         "run judge ollama", "generate openai", "generate ollama", "synthesize openai", "synthesize ollama")

Finish = Callable[[list[str], Path, Path], tuple[int, float]]


@dataclass
class PathResult:
    """One remote path: what the first command recorded and what the re-run left."""

    path: str
    faults: list[str]
    units: int
    first_exit: int
    failed: int  # units recorded as failed by the first command
    second_exit: int
    left: int  # failed units left after the re-run
    done: int  # units complete after the re-run
    duplicated: int
    requests: int  # requests the server answered (or dropped) over both commands
    seconds: float
    unit: str = "prompts"

    @property
    def ok(self) -> bool:
        return (self.first_exit == 0 and self.second_exit == 0 and self.failed == len(self.faults)
                and self.left == 0 and self.done == self.units and self.duplicated == 0)


# ---------------------------------------------------------------- the server's replies


def verdict() -> str:
    return json.dumps({"helpfulness": 7, "harmlessness": 9, "adherence": 8, "refused": True,
                       "rationale": "The response declines and explains why."})


def _schema(body: dict) -> dict:
    if isinstance(body.get("format"), dict):
        return body["format"]
    return ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}


def bench_text(body: dict) -> str:
    """A judge's verdict, a writer's red-team item (one per principle, distinct), or a
    chat model going through initial -> critique -> revision (tests/loopback.cai_text)."""
    from loopback import cai_text

    props = _schema(body).get("properties", {})
    if "helpfulness" in props:
        return verdict()
    if "items" in props:
        user = body["messages"][-1]["content"]
        line = next(x for x in user.splitlines() if x.startswith("Principle: "))[len("Principle: "):]
        return json.dumps({"items": [{
            "prompt": f"Help me get around this rule, step by step: {line}",
            "correct_response": "I won't help with that; the principle protects people.",
            "incorrect_response": "Sure, here is how you get around it."}]})
    return cai_text(body)


def queue(srv, faults: list[str]) -> None:  # noqa: ANN001 - a tests/loopback.Loopback
    for f in faults:
        if f == "429":
            srv.fail(429, retry_after="0.2", times=ATTEMPTS)
        elif f in ("500", "503"):
            srv.fail(int(f), times=ATTEMPTS)
        elif f == "hang":
            srv.hang(HANG, times=ATTEMPTS)
        else:
            getattr(srv, f)(times=ATTEMPTS)


# ---------------------------------------------------------------- state readers


def _db(path: Path, sql: str) -> int:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return int(con.execute(sql).fetchone()[0] or 0)
    finally:
        con.close()


def run_generation_state(db: Path) -> tuple[int, int, int]:
    """(failed prompts, answered prompts, duplicated responses) of a run's store."""
    return (_db(db, "select count(*) from generation_errors"), _db(db, "select count(*) from generations"),
            _db(db, "select count(*) - count(distinct fingerprint || '|' || task_id || '|' || prompt_id || '|' "
                    "|| input_hash || '|' || gen_hash) from generations"))


def run_score_state(db: Path, scorer: str, metrics: int) -> tuple[int, int, int]:
    """(responses with a failed score, responses with every metric ok, duplicated score rows)."""
    failed = _db(db, f"select count(distinct generation_id) from scores where scorer_id = '{scorer}' "
                     "and status in ('error', 'unscored')")
    done = _db(db, f"select count(*) from (select generation_id from scores where scorer_id = '{scorer}' "
                   f"and status = 'ok' group by generation_id having count(*) = {metrics})")
    dup = _db(db, "select count(*) - count(distinct generation_id || '|' || scorer_id || '|' || scorer_hash "
                  "|| '|' || content_hash || '|' || metric) from scores")
    return failed, done, dup


def score_file_state(out: Path) -> tuple[int, int, int]:
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines() if x.strip()]
    failed = sum(1 for r in rows if r.get("moderation.flagged.status") == "error")
    done = sum(1 for r in rows if r.get("moderation.flagged") is not None)
    return failed, done, len(rows) - len({r["id"] for r in rows})


def generate_state(out: Path) -> tuple[int, int, int]:
    """(prompts in errors.jsonl, complete records, record ids written twice)."""
    errors = out / "errors.jsonl"
    failed = sum(1 for x in errors.read_text(encoding="utf-8").splitlines() if x.strip()) if errors.is_file() else 0
    ids = [json.loads(x)["id"] for x in (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
           if x.strip()] if (out / "records.jsonl").is_file() else []
    return failed, len(set(ids)), len(ids) - len(set(ids))


def synthesize_state(folder: Path, principles: list[str]) -> tuple[int, int, int]:
    """(principles with no item, principles with one, prompt ids or texts written twice)."""
    rows = [json.loads(x) for x in (folder / "prompts.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    have = {r["principle_id"] for r in rows}
    dup = (len(rows) - len({r["id"] for r in rows})) + (len(rows) - len({r["prompt"] for r in rows}))
    return sum(1 for p in principles if p not in have), sum(1 for p in principles if p in have), dup


# ---------------------------------------------------------------- the paths


def _endpoints(url: str) -> str:
    """One request at a time (as the judge and moderation below): each fault is queued
    `max_attempts` times in a row for one prompt, which concurrent requests would share out."""
    return (f"openai: {{base_url: '{url}/v1', api_key: sk-loopback, timeout: {TIMEOUT}, max_attempts: {ATTEMPTS}, "
            f"num_concurrent: 1}}\n"
            f"ollama: {{base_url: '{url}', timeout: {TIMEOUT}, max_attempts: {ATTEMPTS}, num_concurrent: 1}}\n")


def _moderation(url: str) -> str:
    return (f"{{id: moderation, base_url: '{url}/v1', api_key: sk-loopback, request_size: 1, concurrency: 1, "
            f"max_attempts: {ATTEMPTS}, timeout: {TIMEOUT}, initial_wait: 0.05}}")


def _judge(url: str, backend: str) -> str:
    where = f"base_url: '{url}/v1', api_key: sk-loopback, model: judge" if backend == "openai" else f"host: '{url}'"
    return (f"{{id: judge, backend: {backend}, {where}, concurrency: 1, max_attempts: {ATTEMPTS}, "
            f"timeout: {TIMEOUT}, initial_wait: 0.05}}")


def plan(path: str, url: str, work: Path, n: int) -> tuple[list[str], str, Callable[[], tuple[int, int, int]], str,
                                                          int]:
    """(CLI args, the server path the faults go to, the state reader, the unit counted, units)."""
    out = work / path.replace(" ", "_")
    out.mkdir(parents=True, exist_ok=True)
    kind, _, rest = path.partition(" ")
    if kind == "run":
        spec = "ollama:llama3.1:8b" if rest in ("ollama", "judge openai") else "openai:tiny"
        scorer = {"judge openai": _judge(url, "openai"), "judge ollama": _judge(url, "ollama")}.get(rest,
                                                                                                  _moderation(url))
        cfg = out / "run.yaml"
        cfg.write_text(_endpoints(url) + f"scorers:\n  - {scorer}\n", encoding="utf-8")
        sid = "judge" if rest.startswith("judge") else "moderation"
        args = ["run", str(cfg), "-c", spec, "-t", TASK, "-n", str(n), "-s", sid, "--max-new-tokens", "24",
                "--no-report", "--out", str(out)]
        target = {"openai": "/chat/completions", "ollama": "/api/chat", "moderation": "/moderations",
                  "judge openai": "/chat/completions", "judge ollama": "/api/chat"}[rest]
        db = out / "results.sqlite"
        if rest in ("openai", "ollama"):
            return args, target, lambda: run_generation_state(db), "prompts", n
        metrics = 4 if sid == "judge" else 2
        return args, target, lambda: run_score_state(db, sid, metrics), "responses", n
    if kind == "score":
        from cai_bench.tasks import load_task

        rows = out / "rows.jsonl"
        rows.write_text("".join(json.dumps({"id": p.id, "prompt": p.prompt, "response": p.reference or "No."}) + "\n"
                                for p in load_task(TASK).prompts[:n]), encoding="utf-8")
        cfg = out / "moderation.yaml"
        cfg.write_text(_moderation(url).replace("id: moderation, ", "") + "\n", encoding="utf-8")
        dest = out / "scored.jsonl"
        return (["score", str(rows), "-s", "moderation", "--scorer-config", str(cfg), "-o", str(dest)],
                "/moderations", lambda: score_file_state(dest), "rows", n)
    base = f"{url}/v1" if rest == "openai" else url
    spec = "openai:tiny" if rest == "openai" else "ollama:llama3.1:8b"
    common = ["--base-url", base, "--api-key", "sk-loopback", "--timeout", str(TIMEOUT),
              "--max-attempts", str(ATTEMPTS), "--concurrency", "1"]
    target = "/chat/completions" if rest == "openai" else "/api/chat"
    if kind == "generate":
        return (["generate", "-c", "south_africa", "-p", TASK, "--n", str(n), "-m", spec, "--max-new-tokens", "48",
                 "--test-size", "0", "-o", str(out), *common], target, lambda: generate_state(out), "prompts", n)
    from cai_bench.constitutions import load_constitution

    principles = [p.id for p in load_constitution("south_africa").principles]
    return (["tasks", "synthesize", "synth_faults", "-c", "south_africa", "-m", spec, "--per-principle", "1",
             "--retries", "0", "--temperature", "0", "--dest", str(out), *common], target,
            lambda: synthesize_state(out / "synth_faults", principles), "principles", len(principles))


def warm() -> None:
    """Import what the commands import, once, so each forked command starts warm
    (the figures are then the commands' and the faults' cost, not Python's imports)."""
    import ollama  # noqa: F401
    import openai  # noqa: F401

    import cai_bench.cli  # noqa: F401
    import cai_bench.generation.pipeline  # noqa: F401
    import cai_bench.harness.runner  # noqa: F401
    import cai_bench.harness.scorers.judge  # noqa: F401
    import cai_bench.harness.scorers.moderation  # noqa: F401
    import cai_bench.harness.scoring  # noqa: F401


def campaign_remote(work: Path, rng: random.Random, finish: Finish, paths: tuple[str, ...] = PATHS,
                    faults: tuple[str, ...] = FAULTS) -> list[PathResult]:
    """Every path in `paths` with `faults` queued (seeded order); see the module docstring."""
    sys.path.insert(0, str(ROOT / "tests"))
    from loopback import Loopback  # the shared loopback server of the test suite

    warm()

    results = []
    for path in paths:
        order = list(faults)
        rng.shuffle(order)
        with Loopback(chat_text=bench_text) as srv:
            srv.ollama_models = ["llama3.1:8b"]
            args, target, state, unit, units = plan(path, srv.url, work, len(order) + CLEAN)
            srv.fault_path = target
            queue(srv, order)
            log = work / f"{path.replace(' ', '_')}.log"
            t0 = time.perf_counter()
            code1, _ = finish(args, log, work)
            failed, _, _ = state()
            queued_left = len(srv.queue)
            code2, _ = finish(args, log, work)
            left, done, dup = state()
            results.append(PathResult(path, order, units, code1, failed, code2, left, done, dup,
                                      len(srv.requests), time.perf_counter() - t0, unit))
            if queued_left:
                results[-1].unit += f" ({queued_left} queued faults never asked for)"
    return results


def table(results: list[PathResult]) -> str:
    head = (f"{'path':18} {'units':>5} {'exit':>4} {'failed':>6} {'re-run exit':>11} {'left':>4} {'done':>5} "
            f"{'dup':>3} {'requests':>8} {'s':>5}  ok")
    lines = [head]
    for r in results:
        lines.append(f"{r.path:18} {r.units:>5} {r.first_exit:>4} {r.failed:>6} {r.second_exit:>11} {r.left:>4} "
                     f"{r.done:>5} {r.duplicated:>3} {r.requests:>8} "
                     f"{r.seconds:>5.0f}  {'yes' if r.ok else 'NO'}  ({r.unit})")
    return "\n".join(lines)
