"""torch's thread count on a shared CPU: today's default vs the count `cai_bench.cpu_threads`
chooses by measurement, alone and beside one busy process (a Python busy loop), side by side.

Every case is a fresh process (as a command would be): it loads bundled SmolLM2, warms up
on one short prompt, then times one generation batch (8 prompts, 64 new tokens, greedy,
`HFChat` as `generate` and the judge use it). "default" keeps torch's count as it starts
(one thread per core: `--threads` set to it, as before this choice existed); "chosen"
lets `cpu_threads.apply()` measure and choose, as every command now does. OMP_NUM_THREADS is removed
from every case's environment. Prints seconds per case, the thread counts, the load
average before each case, and the ratios the targets are stated in:

    chosen busy / chosen alone      <= 2     (beside a busy process)
    default alone / chosen alone    >= 0.95  (alone: no slower than today)

    OMP_NUM_THREADS= python benchmarks/bench_threads.py [--prompts 8] [--tokens 64] [--reps 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["What is a constitution?", "Name three rivers in Africa.", "How do I bake bread?",
           "Explain photosynthesis simply.", "Write a haiku about rain.", "What is 17 times 23?",
           "Why is the sky blue?", "Give advice for a job interview.", "What does a judge do?",
           "Describe a zebra.", "How do vaccines work?", "Tell me about Cape Town."]


def one_case(mode: str, prompts: int, tokens: int) -> dict:
    """Runs inside the case's own process: load, warm up, time one batch."""
    import torch

    from cai_bench import cpu_threads
    from cai_bench.models import BUNDLED
    from cai_bench.models.chat import GenParams
    from cai_bench.models.chat.hf_chat import HFChat

    torch_default = torch.get_num_threads()
    if mode == "default":  # today: torch's own count, whatever the CPU is doing (HFChat would choose otherwise)
        cpu_threads.set_explicit(torch_default)
    choice = cpu_threads.apply("generation") if mode == "chosen" else None
    busy = choice.others_busy if choice is not None else cpu_threads.others_busy()  # what the other case saw
    model = HFChat(str(BUNDLED["smollm2-135m-instruct"].prepare()), batch_size=prompts, device="cpu")
    model.chat([[{"role": "user", "content": "Hi"}]], GenParams(4, 0.0, 1.0, 0))
    convs = [[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}] for i in range(prompts)]
    started = time.perf_counter()
    out = model.chat(convs, GenParams(tokens, 0.0, 1.0, 0))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "threads": torch.get_num_threads(), "torch_default": torch_default,
            "tokens": sum(c.tokens for c in out), "others_busy": None if busy is None else round(busy, 2)}


def run_case(mode: str, busy: bool, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TQDM_DISABLE="1", TRANSFORMERS_VERBOSITY="error")
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        if spin is not None:
            time.sleep(1.0)  # the busy loop is running before the case measures anything
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, __file__, "--case", mode, "--prompts", str(args.prompts),
                               "--tokens", str(args.tokens)], env=env, capture_output=True, text=True, check=False)
    finally:
        if spin is not None:
            spin.kill()
            spin.wait()
    if proc.returncode != 0:
        raise SystemExit(f"case {mode} busy={busy} failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(mode=mode, busy=busy, load_before=round(load, 2))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=1, help="rounds of the four cases (interleaved); the median is used")
    ap.add_argument("--case", choices=["default", "chosen"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(one_case(args.case, args.prompts, args.tokens)))
        return
    cases = [("default", False), ("chosen", False), ("default", True), ("chosen", True)]
    times: dict[tuple[str, bool], list[float]] = {c: [] for c in cases}
    print(f"{args.prompts} prompts x {args.tokens} new tokens, greedy, bundled SmolLM2, {os.cpu_count()} cores; "
          f"load before: {os.getloadavg()[0]:.2f}")
    for rep in range(args.reps):
        for mode, busy in cases:
            row = run_case(mode, busy, args)
            times[(mode, busy)].append(row["seconds"])
            print(f"  rep {rep + 1} {mode:7s} {'busy ' if busy else 'alone'}: {row['seconds']:6.1f} s, "
                  f"{row['threads']} threads (torch default {row['torch_default']}; other processes busy "
                  f"{row['others_busy']} cores at the start), "
                  f"{row['tokens']} tokens, load before {row['load_before']}", flush=True)
    med = {c: sorted(v)[len(v) // 2] for c, v in times.items()}
    print("median seconds: " + ", ".join(f"{m} {'busy' if b else 'alone'} {s:.1f}" for (m, b), s in med.items()))
    print(f"default busy / default alone: {med[('default', True)] / med[('default', False)]:.2f}x (today)")
    print(f"chosen busy / chosen alone:   {med[('chosen', True)] / med[('chosen', False)]:.2f}x (target <= 2)")
    print(f"speed alone, chosen vs default: {med[('default', False)] / med[('chosen', False)]:.2f}x (target >= 0.95)")
    print(f"beside a busy process, default / chosen: {med[('default', True)] / med[('chosen', True)]:.2f}x")


if __name__ == "__main__":
    main()
