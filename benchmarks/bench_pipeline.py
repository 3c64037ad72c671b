"""The whole `cai-bench pipeline` (cpu-small) from a fresh clone: the code before a change vs after it.

Clones the repository twice (`--old` and `--new` revisions) into `--out`, runs each clone's own
`make setup` (its own pinned virtual environment, as a user's clone would have), then runs
`cai-bench pipeline --task TASK --profile cpu-small` from an empty output folder in the order
`--order` gives (default ABBA: old, new, new, old, so a drift in the machine's load falls on both
sides alike; C is the new revision set up with `make setup VLLM=1`, vLLM in the same venv, where the
eval's `engine: auto` may pick it). Prints every run's stage times, the new/old ratio of the mean of each stage and of
the total, and the verdict tables of one old and one new run side by side, with each new
delta checked against the old delta's 95 % CI.

Both sides read bundled data from one `$CAI_BENCH_SHARED_DATA` folder and HHH from
`$CAI_BENCH_HHH_PATH` (old revisions predate the packaged copies); OMP_NUM_THREADS is removed,
so each side picks its threads as it would for a user. Run it on an otherwise idle machine:

    python benchmarks/bench_pipeline.py --old b282323 --new HEAD --out /work/bench [--order ABBA]
    python benchmarks/bench_pipeline.py --old b282323 --new HEAD --out /work/bench --order ABBAC   # + vLLM
    python benchmarks/bench_pipeline.py --out /work/bench --only-compare   # re-print
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_eval_engines import rows  # one reader of a pipeline's verdict rows (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
STAGES = ("task", "data", "sft", "dpo", "eval", "report")


def sh(cmd: list[str], log: Path, cwd: Path | None = None, env: dict | None = None) -> float:
    started = time.perf_counter()
    with log.open("a") as fh:
        rc = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        sys.exit(f"{' '.join(cmd)} exited {rc}; see {log}")
    return time.perf_counter() - started


def clone(out: Path, label: str, rev: str, vllm: bool = False) -> Path:
    src = out / f"src-{label}"
    log = out / f"setup-{label}.log"
    if not (src / ".venv" / ".setup-stamp").exists() or (vllm and not (src / ".venv" / ".vllm-stamp").exists()):
        if not src.exists():
            sha = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.strip()
            sh(["git", "clone", "-q", str(ROOT), str(src)], log)
            sh(["git", "checkout", "-q", sha], log, cwd=src)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        secs = sh(["make", "setup", *(["VLLM=1"] if vllm else [])], log, cwd=src, env=env)
        print(f"{label}: {rev} set up in {secs:.0f} s")
    return src


def run_env(out: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(CAI_BENCH_SHARED_DATA=str(SHARED), CAI_BENCH_HOME=str(out / "home"), HF_HUB_OFFLINE="1",
               CAI_BENCH_HHH_PATH=str(SHARED / "cai_paper_anthropic" / "evals" / "438HHHEvaluations.jsonl"))
    return env


def load_avg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_once(out: Path, src: Path, label: str, i: int, task: str) -> dict:
    dest = out / f"run{i}-{label}"
    if (dest / "report" / "pipeline.json").is_file():
        return json.loads((dest / "bench.json").read_text())
    before = load_avg()
    wall = sh([str(src / ".venv" / "bin" / "cai-bench"), "pipeline", "--task", task, "--profile", "cpu-small",
               "--out", str(dest)], out / f"run{i}-{label}.log", env=run_env(out))
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=src, capture_output=True, text=True).stdout
    rec = {"label": label, "rev": rev.strip(), "run": i, "wall": round(wall, 1), "load_before": before, "load_after": load_avg(),
           "stages": json.loads((dest / "timings.json").read_text())}
    (dest / "bench.json").write_text(json.dumps(rec, indent=2))
    print(f"run {i} {label} ({rec['rev']}): {wall:.0f} s  " + ", ".join(f"{k} {v:.0f}" for k, v in rec["stages"].items())
          + f"  (load {before} -> {rec['load_after']})", flush=True)
    return rec


def table(recs: list[dict]) -> None:
    for side in ("new", "vllm"):
        by = {lab: [r for r in recs if r["label"] == lab] for lab in ("old", side)}
        if not by["old"] or not by[side]:
            continue
        print(f"\n{'stage':8} {'old mean s':>11} {side + ' mean s':>11} {side + '/old':>8}   (runs: old "
              f"{len(by['old'])}, {side} {len(by[side])})")
        for st in (*STAGES, "wall"):
            vals = {lab: [r["wall"] if st == "wall" else r["stages"].get(st, 0.0) for r in rs]
                    for lab, rs in by.items()}
            o, n = statistics.mean(vals["old"]), statistics.mean(vals[side])
            print(f"{st:8} {o:11.1f} {n:11.1f} {n / o if o else float('nan'):8.3f}   old {vals['old']} "
                  f"{side} {vals[side]}")


def compare(old: Path, new: Path) -> int:
    a, b = rows(old), rows(new)
    print(f"\nverdicts: {old.name} vs {new.name}")
    print(f"{'task':28} {'metric':28} {'old DPO-base [95% CI]':34} {'new DPO-base':>12}  verdict old / new")
    bad = 0
    for key in sorted(set(a) | set(b)):
        ra, rb = a.get(key), b.get(key)
        if ra is None or rb is None:
            bad += 1
            print(f"{key[0]:28} {key[1]:28} only in {'old' if rb is None else 'new'}")
            continue
        da, db = ra.get("dpo_vs_base") or {}, rb.get("dpo_vs_base") or {}
        inside = da and db and da["lo"] - 1e-12 <= db["delta"] <= da["hi"] + 1e-12
        same = ra.get("verdict") == rb.get("verdict")
        bad += not (inside and same)
        ci = f"{da.get('delta', float('nan')):+.4f} [{da.get('lo', float('nan')):+.4f}, {da.get('hi', float('nan')):+.4f}]"
        print(f"{key[0]:28} {key[1]:28} {ci:34} {db.get('delta', float('nan')):+12.4f}  {ra.get('verdict')} / "
              f"{rb.get('verdict')}{'' if inside and same else '   <-- differs'}")
    print("every verdict identical and every delta inside its CI" if not bad else f"{bad} row(s) differ")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default="b282323")
    ap.add_argument("--new", default="HEAD")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--task", default="cai_south_africa")
    ap.add_argument("--order", default="ABBA", help="A = old, B = new, in run order")
    ap.add_argument("--only-compare", action="store_true")
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    recs: list[dict] = []
    if not args.only_compare:
        order = args.order.upper()
        srcs = {"old": clone(out, "old", args.old), "new": clone(out, "new", args.new)}
        if "C" in order:
            srcs["vllm"] = clone(out, "vllm", args.new, vllm=True)
        for i, ch in enumerate(order):
            label = {"A": "old", "B": "new", "C": "vllm"}[ch]
            recs.append(run_once(out, srcs[label], label, i, args.task))
    else:
        recs = [json.loads(p.read_text()) for p in sorted(out.glob("run*-*/bench.json"))]
    table(recs)
    first = {lab: out / f"run{r['run']}-{lab}" for r in reversed(recs) for lab in [r["label"]]}
    bad = sum(compare(first["old"], first[side]) for side in ("new", "vllm") if "old" in first and side in first)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
