"""A served checkpoint (`openai:`) asked by `cai-bench run` in one process: the default
number of requests in flight (`openai.num_concurrent`, 16) vs one at a time, against the
test suite's loopback server (tests/loopback.py: the real OpenAI wire format) answering
each request after 0.2 s, as a busy vLLM or hosted endpoint would.

Each case is a fresh store in a temporary folder: `run` on 480 prompts of
cai_anthropic_harmless, no scorers, no report. Generation time is what the store
records: the sum over the run's chunks of the time the model took to answer them
(`generations.seconds` is each chunk's time shared among its answers); the run's
wall time (start-up, planning and storing included) is printed beside it. Prints
the most requests the server saw at once, and the ratio. Target: the default
generates 480 answers in at most 9 s.

    python benchmarks/bench_concurrency.py [--prompts 480] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from loopback import Loopback  # noqa: E402 - the test suite's server (tests/ is on the path)


def one_run(lb: Loopback, prompts: int, concurrent: int | None, folder: Path) -> tuple[float, float, int, int]:
    """(generation seconds, wall seconds, responses stored, most requests in flight) for one `run`."""
    import sqlite3

    from cai_bench.harness.config import RunConfig
    from cai_bench.harness.runner import run

    openai = {"base_url": lb.openai_url, "api_key": "sk-loopback"}
    if concurrent is not None:
        openai["num_concurrent"] = concurrent
    cfg = RunConfig.model_validate({"checkpoints": ["openai:loopback"], "tasks": ["cai_anthropic_harmless"],
                                    "scorers": [], "limit": prompts, "limit_mode": "head", "out": str(folder),
                                    "report": False, "openai": openai})
    lb.max_in_flight = 0
    started = time.perf_counter()
    result = run(cfg)
    wall = time.perf_counter() - started
    con = sqlite3.connect(folder / "results.sqlite")
    (generation,) = con.execute("select sum(seconds) from generations").fetchone()
    con.close()
    return generation, wall, result.generated, lb.max_in_flight


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=480)
    ap.add_argument("--delay", type=float, default=0.2, help="seconds the server takes per request")
    args = ap.parse_args()
    from cai_bench.console import configure
    from cai_bench.harness.config import EndpointSettings

    configure(-1)  # no progress bars: the figures only
    default = EndpointSettings().num_concurrent
    rows = {}
    with Loopback(delay=args.delay) as lb, tempfile.TemporaryDirectory() as tmp:
        for name, concurrent in (("default", None), ("num_concurrent=1", 1)):
            seconds, wall, stored, peak = one_run(lb, args.prompts, concurrent, Path(tmp) / name)
            rows[name] = seconds
            print(f"{name:17s}: generation {seconds:6.1f} s (run {wall:6.1f} s) for {stored} responses stored, "
                  f"at most {peak} requests in flight (server answers each after {args.delay:g} s)", flush=True)
    print(f"default num_concurrent = {default}; one at a time / default: {rows['num_concurrent=1'] / rows['default']:.1f}x; "
          f"default {'within' if rows['default'] <= 9.0 else 'OVER'} the 9 s target for {args.prompts} prompts")


if __name__ == "__main__":
    main()
