"""Batched in-process generation vs one prompt at a time on the bundled SmolLM2.

Same prompts (the first N of cai_south_africa), same greedy settings, measured
side by side in one run; prints tokens/s of each and the ratio.

    .venv/bin/python benchmarks/bench_generation.py [--n 16] [--max-new-tokens 64] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    from cai_bench.models.chat import GenParams
    from cai_bench.models.chat.hf_chat import HFChat
    from cai_bench.models import BUNDLED
    from cai_bench.tasks import load_task

    prompts = [p.prompt for p in load_task("cai_south_africa").prompts[: args.n]]
    convs = [[{"role": "user", "content": p}] for p in prompts]
    backend = HFChat(str(BUNDLED["smollm2-135m-instruct"].prepare()), batch_size=args.batch_size)
    params = GenParams(max_new_tokens=args.max_new_tokens)
    backend.chat(convs[:2], GenParams(max_new_tokens=4))  # warm-up

    rows = []
    for label, bs in (("one at a time", 1), (f"batched ({args.batch_size})", args.batch_size)):
        backend.batch_size = bs
        t0 = time.perf_counter()
        out = backend.chat(convs, params)
        dt = time.perf_counter() - t0
        tokens = sum(c.tokens for c in out)
        rows.append((label, tokens, dt, tokens / dt))
    print(f"SmolLM2-135M-Instruct, {args.n} prompts, greedy, max_new_tokens={args.max_new_tokens}, "
          f"device={backend.device}")
    print(f"{'mode':<16}{'tokens':>8}{'seconds':>10}{'tokens/s':>10}")
    for label, tokens, dt, tps in rows:
        print(f"{label:<16}{tokens:>8}{dt:>10.2f}{tps:>10.1f}")
    print(f"speed-up (tokens/s, batched / one at a time): {rows[1][3] / rows[0][3]:.2f}x")


if __name__ == "__main__":
    main()
