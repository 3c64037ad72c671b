"""Validation throughput vs `cai-bench score` on the same rows (target: within 10%).

Both paths run the same scorer instance (loaded once, before timing) over the same
rows with the scorer's own batch size: `score_file` (what `cai-bench score` runs)
and `validate` (what `cai-bench scorers validate --against` runs, figures and
bootstrap CIs included). Rows: the CAI paper's HarmfulVsEthical conversations
(response = the final answer, reference = the question), scored by `similarity`
on the bundled MiniLM, so it runs offline. Runs alternate, the median of --repeat
runs is reported.

    .venv/bin/python benchmarks/bench_validity.py [--data ../shared/data] [--n 254] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--n", type=int, default=254)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scorer", default="similarity")
    args = ap.parse_args()

    from cai_bench.harness import score_file as sf
    from cai_bench.harness.scorers import build_scorer
    from cai_bench.harness.scoring import batch_size_of, score_inputs
    from cai_bench.validity.run import validate
    from cai_bench.validity.suites import LabelledRow, get_suite

    rows = get_suite("harmful-vs-ethical").load(Path(args.data))[: args.n]
    items = [LabelledRow(r.id, r.prompt, r.response, r.label, reference=r.prompt) for r in rows]
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": r.id, "prompt": r.prompt, "response": r.response,
                                        "reference": r.reference, "harmful": int(r.label)}) + "\n" for r in items))
    scorer = build_scorer(args.scorer)
    scorer.load()

    def run_score() -> None:  # the body of `cai-bench score` for one scorer, model already loaded
        inputs = sf._inputs(sf.read_rows(path))
        out = [None] * len(inputs)

        def save(batch, got):  # noqa: ANN001
            for r in got:
                out[int(r.key)] = r.value

        score_inputs(scorer, inputs, batch_size_of(scorer), save)

    def run_validate() -> None:
        validate(scorer, items, "binary", [m.name for m in scorer.metrics], suite="bench", manage=False,
                 resume=False)

    run_score()  # warm-up (first batch compiles kernels / fills caches)
    times: dict[str, list[float]] = {"score": [], "validate": []}
    cpu: dict[str, list[float]] = {"score": [], "validate": []}
    for _ in range(args.repeat):
        for name, fn in (("score", run_score), ("validate", run_validate)):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    scorer.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"scorer {args.scorer}, {len(items)} rows of HarmfulVsEthical, median of {args.repeat} runs "
          f"(CPU seconds: this process, all threads; they resist other load on the machine)")
    print(f"{'path':<10}{'seconds':>10}{'rows/s':>10}{'CPU s':>10}")
    for k in ("score", "validate"):
        print(f"{k:<10}{med[k]:>10.2f}{len(items) / med[k]:>10.1f}{med_cpu[k]:>10.2f}")
    ratio = med["validate"] / med["score"]
    ratio_cpu = med_cpu["validate"] / med_cpu["score"]
    print(f"validate / score: wall {ratio:.3f}, CPU {ratio_cpu:.3f} "
          f"({'within' if max(ratio, ratio_cpu) <= 1.10 else 'OVER'} the 10% target)")


if __name__ == "__main__":
    main()
