"""Several `cai-bench run` workers on one PostgreSQL store (a throwaway local
server): 1, 2 and 4 workers doing the same run, then 3 workers of which one is
killed with SIGKILL while it holds a unit. Prints wall time, units duplicated
(worked more than once), units lost (not done, or responses/scores missing) and
each worker's share of the units.

The workers are separate `cai-bench run` processes started as on separate
machines (each gets its own CAI_BENCH_WORKER_HOST), so the killed worker's unit
is taken over only when its lease expires (--lease-seconds), not by the
same-host dead-pid shortcut. The model is a tiny random Llama built here with
SmolLM2's tokenizer; the scorer is similarity (bundled MiniLM).

    python benchmarks/bench_workers.py [--prompts 48] [--chunk 4] [--lease 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from pg_cluster import create_database, query  # noqa: E402 - the test suite's helpers (tests/ is on the path)


def tiny_model(dest: Path) -> Path:
    """The test suite's tiny random Llama (tests/tiny_models.py) with SmolLM2's tokenizer."""
    from tiny_models import build_tiny_llama

    from cai_bench.models import BUNDLED

    return build_tiny_llama(BUNDLED["smollm2-135m-instruct"].prepare(), dest)


def start_worker(args: argparse.Namespace, model: Path, url: str, out: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "CAI_BENCH_WORKER_HOST": name, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "cai_bench", "-q", "run", "--checkpoint", str(model), "--task", "cai_south_africa",
           "--limit", str(args.prompts), "--chunk-size", str(args.chunk), "--max-new-tokens", "8",
           "--scorer", "similarity", "--store", url, "--out", str(out), "--no-report",
           "--lease-seconds", str(args.lease)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def tally(url: str, prompts: int) -> dict:
    units = query(url, "select kind, status, worked, done_by from work_units")
    gens = query(url, "select count(*), count(distinct prompt_id) from generations")[0]
    scores = query(url, "select count(*), count(distinct generation_id) from scores where status = 'ok'")[0]
    shares: dict[str, int] = {}
    for _, status, worked, done_by in units:
        if status == "done" and worked:
            host = (done_by or "?").split(":")[0]
            shares[host] = shares.get(host, 0) + 1
    return {
        "units": len(units),
        "duplicated": sum(1 for u in units if u[2] > 1),
        "lost": sum(1 for u in units if u[1] != "done") + (prompts - gens[1]) + (prompts - scores[1]),
        "stored": f"{gens[0]} responses, {scores[0]} scores",
        "shares": shares,
    }


def scenario(args, model, server, n: int, kill: bool, tmp: Path) -> dict:
    url = create_database(server, f"bench_{n}{'_kill' if kill else ''}")
    started = time.perf_counter()
    procs = [start_worker(args, model, url, tmp / f"out{n}", f"machine-{i + 1}") for i in range(n)]
    killed_at = taken_at = None
    if kill:  # SIGKILL machine-1 as soon as it holds a generation unit it has not finished
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            held = query(url, "select unit_key from work_units where status = 'claimed' "
                              "and owner like 'machine-1:%' and kind = 'generate'") if _has_table(url) else []
            if held:
                procs[0].send_signal(signal.SIGKILL)
                procs[0].wait()
                killed_at = time.perf_counter()
                victim = held[0][0]
                break
            time.sleep(0.2)
        while taken_at is None and time.monotonic() < deadline:
            owner = query(url, f"select owner from work_units where unit_key = '{victim}'")[0][0]
            if owner and not owner.startswith("machine-1:"):
                taken_at = time.perf_counter()
            time.sleep(0.2)
    errors = []
    for i, p in enumerate(procs):
        _, err = p.communicate(timeout=1800)
        if p.returncode not in (0, -signal.SIGKILL):
            errors.append(f"machine-{i + 1} exited {p.returncode}: {err[-500:]}")
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit("\n".join(errors))
    res = tally(url, args.prompts)
    res["workers"], res["wall_s"] = n, wall
    if kill:
        res["takeover_s"] = (taken_at - killed_at) if taken_at and killed_at else None
    return res


def _has_table(url: str) -> bool:
    return bool(query(url, "select 1 from information_schema.tables where table_name = 'work_units'"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--chunk", type=int, default=4)
    ap.add_argument("--lease", type=float, default=20.0)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    import pg_cluster

    ok, reason = pg_cluster.available()
    if not ok:
        raise SystemExit(f"skipped: {reason}")
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as t, pg_cluster.throwaway_cluster() as server:
        tmp = Path(t)
        model = tiny_model(tmp / "tiny-llama")
        rows = [scenario(args, model, server, int(n), False, tmp) for n in args.workers.split(",")]
        rows.append(scenario(args, model, server, 3, True, tmp))
    base = rows[0]["wall_s"]
    print(f"\n{args.prompts} prompts in chunks of {args.chunk} + similarity scoring, lease {args.lease:.0f} s, "
          f"{os.cpu_count()} CPUs")
    print(f"{'workers':>8} {'wall s':>7} {'speed-up':>8} {'units':>5} {'dup':>4} {'lost':>4}  shares / stored")
    for r in rows:
        label = f"{r['workers']}" + (" (1 killed)" if "takeover_s" in r else "")
        shares = ", ".join(f"{k} {v}" for k, v in sorted(r["shares"].items()))
        print(f"{label:>8} {r['wall_s']:7.1f} {base / r['wall_s']:8.2f} {r['units']:5d} {r['duplicated']:4d} "
              f"{r['lost']:4d}  {shares} | {r['stored']}")
    kill = rows[-1]
    if kill.get("takeover_s") is not None:
        print(f"killed worker's unit taken over {kill['takeover_s']:.1f} s after SIGKILL (lease {args.lease:.0f} s)")
    bad = [r for r in rows if r["duplicated"] or r["lost"]]
    if bad:
        raise SystemExit(f"FAILED: duplicated or lost units in {len(bad)} scenario(s)")


if __name__ == "__main__":
    main()
