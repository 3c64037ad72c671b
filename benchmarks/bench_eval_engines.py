"""The pipeline's eval stage with transformers and with vLLM, on one set of trained adapters.

Copies a finished pipeline's task, data, sft and dpo folders into one fresh folder per
engine, runs `cai-bench pipeline` there with `eval.engine` set (so only eval and report
run), one engine after the other, then prints the eval stage times, their ratio, and
both verdict tables side by side, with each vLLM delta checked against the transformers
delta's 95 % CI:

    python benchmarks/bench_eval_engines.py --from runs/za --out /tmp/engines
    python benchmarks/bench_eval_engines.py --from runs/za --out /tmp/engines --only-compare   # re-print

Set OMP_NUM_THREADS=1 on a shared CPU (the transformers side); vLLM must be installed in
this environment or named by CAI_BENCH_VLLM_PYTHON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("task", "data", "sft", "dpo")


def prepare(src: Path, out: Path, engine: str) -> Path:
    dest = out / engine
    if not dest.exists():
        dest.mkdir(parents=True)
        for name in STAGES:
            shutil.copytree(src / name, dest / name)
    cfg = json.loads((src / "pipeline_config.json").read_text())
    raw = {"profile": cfg["profile"], "task": cfg["task"], "student": cfg["student"], "seed": cfg["seed"],
           "out": str(dest), "eval": {**cfg["eval"], "engine": engine}}
    path = out / f"{engine}.yaml"
    path.write_text(json.dumps(raw, indent=2))  # JSON is YAML
    return path


def run(config: Path, log: Path) -> float:
    started = time.perf_counter()
    with open(log, "w") as f:
        done = subprocess.run([sys.executable, "-m", "cai_bench", "pipeline", str(config)],
                              stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        sys.exit(f"pipeline failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - started


def rows(folder: Path) -> dict[tuple[str, str], dict]:
    data = json.loads((folder / "report" / "pipeline.json").read_text())
    return {(r["task"], r["metric"]): r for r in data["rows"]}


def compare(out: Path, engines: list[str]) -> None:
    times = {e: json.loads((out / e / "timings.json").read_text())["eval"] for e in engines}
    for e in engines:
        print(f"eval stage, {e}: {times[e]:.1f} s")
    if len(engines) == 2:
        a, b = engines
        print(f"{b}/{a}: {times[b] / times[a]:.2f}x")
    tables = {e: rows(out / e) for e in engines}
    a, b = engines[0], engines[-1]
    print(f"\n| task | metric | n | {a} DPO-base [95% CI] | {a} verdict | {b} DPO-base | {b} verdict | "
          f"same verdict | {b} delta in {a}'s CI |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, ra in tables[a].items():
        rb = tables[b].get(key)
        da = ra["dpo_vs_base"]
        if rb is None:
            print(f"| {key[0]} | {key[1]} | {ra['n']} | {da['delta']:.3f} | {ra['verdict']} | - | missing | no | - |")
            continue
        db = rb["dpo_vs_base"]
        inside = da["lo"] - 1e-12 <= db["delta"] <= da["hi"] + 1e-12
        print(f"| {key[0]} | {key[1]} | {ra['n']} | {da['delta']:.3f} [{da['lo']:.3f}, {da['hi']:.3f}] | "
              f"{ra['verdict']} | {db['delta']:.3f} | {rb['verdict']} | "
              f"{'yes' if ra['verdict'] == rb['verdict'] else 'NO'} | {'yes' if inside else 'NO'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="src", type=Path, required=True, help="a finished pipeline folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--engines", nargs="+", default=["hf", "vllm"])
    ap.add_argument("--only-compare", action="store_true", help="print the comparison of earlier runs")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.only_compare:
        for engine in args.engines:
            config = prepare(args.src, args.out, engine)
            wall = run(config, args.out / f"{engine}.log")
            print(f"{engine}: pipeline (eval + report) {wall:.1f} s wall", flush=True)
    compare(args.out, args.engines)


if __name__ == "__main__":
    main()
