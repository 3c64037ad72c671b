"""DPO with the reference's log-probs precomputed once vs the reference run at every step, side by side.

The same DPO steps of `cai-bench train dpo` (recipe smollm2-135m-cpu-dpo: bundled SmolLM2-135M in
4-bit NF4, from a LoRA adapter, so the reference is TRL's frozen copy of that adapter) on the bundled
South African preference pairs, one epoch as in the pipeline (`--pairs` pairs at batch 2), each run
a fresh subprocess, alternated:

1. `baseline`:   precompute_ref_log_probs=false (today: the reference runs inside every step);
2. `precompute`: precompute_ref_log_probs=true, empty cache (the stage's time includes the precompute);
3. `reuse`:      the same, with the cache of run 2 (a re-run of the stage);
then kill -9 after checkpoint-(steps/2) and resume, for both ways, to measure the tolerance that
resuming gives (max |adapter difference| straight vs resumed) beside the difference between the two
ways (baseline vs precompute) and whether the resume reused the cache.

Figures: the wall time of the `train()` call (model load + precompute + steps + save) and the
training part alone (precompute + the Trainer's train_runtime); ratios precompute/baseline.

Usage: .venv/bin/python benchmarks/bench_dpo.py [--pairs 32] [--repeats 1] [--keep DIR] [--sft ADAPTER_DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

CHILD = """
import json, sys, time
from cai_bench.training import load_recipe, train
t = time.perf_counter()
res = train("dpo", load_recipe("smollm2-135m-cpu-dpo", sys.argv[2:]), resume=sys.argv[1] == "resume")
wall = time.perf_counter() - t
splits = res.metadata["ref_log_probs"]["splits"]
print("RESULT", json.dumps({"wall": wall, "runtime": res.metrics["train_runtime"], "steps": res.metrics["global_step"],
                            "precompute": sum(s["seconds"] for s in splits), "reused": [s["reused"] for s in splits]}))
"""

FRESH_ADAPTER = """
import json, sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
base, dest = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(
    r=16, lora_alpha=16, lora_dropout=0.05, init_lora_weights=False, task_type="CAUSAL_LM",
    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
with torch.no_grad():  # a mild shift of the base, as a short SFT gives (random B would be noise)
    for n, p in model.named_parameters():
        if "lora_B" in n:
            p.mul_(0.02)
model.save_pretrained(dest)
AutoTokenizer.from_pretrained(base).save_pretrained(dest)
cfg = json.load(open(f"{dest}/adapter_config.json"))
cfg["base_model_name_or_path"] = base
json.dump(cfg, open(f"{dest}/adapter_config.json", "w"), indent=2)
"""


def _child(mode: str, settings: list[str], kill_after: Path | None = None) -> dict | None:
    """One train() in a fresh interpreter; with `kill_after`, SIGKILL it once that checkpoint is complete."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, *settings], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if kill_after is not None:
        while proc.poll() is None and not (kill_after / "trainer_state.json").is_file():
            time.sleep(0.2)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            return None
    out, err = proc.communicate()
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"benchmark child failed:\n{err[-3000:]}")


def _max_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    x, y = load_file(str(a / "adapter_model.safetensors")), load_file(str(b / "adapter_model.safetensors"))
    assert x.keys() == y.keys()
    return max((x[k].float() - y[k].float()).abs().max().item() for k in x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=32, help="preference pairs: one epoch is pairs/2 steps")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--sft", help="start from this SFT adapter dir (default: a fresh seeded LoRA on SmolLM2)")
    ap.add_argument("--keep", help="keep the runs in this folder (default: a temp dir)")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "training"))
    from conftest import build_cai_dataset  # the training tests' generate-format data from the real SA pairs

    from cai_bench.models import BUNDLED

    steps = a.pairs // 2
    tmp_ctx = tempfile.TemporaryDirectory() if not a.keep else None
    tmp = Path(a.keep or tmp_ctx.name)  # type: ignore[union-attr]
    tmp.mkdir(parents=True, exist_ok=True)
    data = build_cai_dataset(DATA, tmp / "data", n_train=a.pairs, n_test=0)
    start = Path(a.sft) if a.sft else tmp / "sft"
    if not a.sft and not (start / "adapter_config.json").is_file():
        model_dir = str(BUNDLED["smollm2-135m-instruct"].prepare())
        subprocess.run([sys.executable, "-c", FRESH_ADAPTER, model_dir, str(start)], check=True, cwd=ROOT)

    def settings(out: Path, precompute: bool, *extra: str) -> list[str]:
        return [f"model_name_or_path={start}", f"dataset_mixer={{{data}: 1.0}}", "dataset_splits=[train]",
                f"max_steps={steps}", f"save_steps={steps // 2}", "logging_steps=1", f"output_dir={out}",
                f"precompute_ref_log_probs={str(precompute).lower()}", *extra]

    rows: dict[str, list[dict]] = {"baseline": [], "precompute": [], "reuse": []}
    for i in range(a.repeats):
        rows["baseline"].append(_child("run", settings(tmp / f"baseline{i}", False)))
        rows["precompute"].append(_child("run", settings(tmp / f"precompute{i}", True)))
        cache = f"ref_log_probs_cache_dir={tmp / f'precompute{i}' / 'ref_logps'}"
        rows["reuse"].append(_child("run", settings(tmp / f"reuse{i}", True, cache)))
        for k, v in rows.items():
            r = v[-1]
            print(f"repeat {i} {k:10s}: train() {r['wall']:.1f} s, precompute {r['precompute']:.1f} s, "
                  f"train_runtime {r['runtime']:.1f} s ({r['steps']} steps), reused {r['reused']}", flush=True)

    def best(k: str, f: str) -> float:
        return min(r[f] if f != "train" else r["precompute"] + r["runtime"] for r in rows[k])

    print(f"\nDPO, SmolLM2-135M 4-bit, CPU, {a.pairs} pairs = {steps} steps (one epoch), best of {a.repeats}:")
    for k in ("precompute", "reuse"):
        print(f"  {k:10s} / baseline: stage (train() call) {best(k, 'wall') / best('baseline', 'wall'):.3f}x, "
              f"training incl. precompute {best(k, 'train') / best('baseline', 'train'):.3f}x "
              f"({best(k, 'train'):.1f} s vs {best('baseline', 'train'):.1f} s)")
    print(f"  precompute alone: {best('precompute', 'precompute'):.1f} s for {a.pairs} pairs; reference share "
          f"of a baseline step: {1 - best('reuse', 'runtime') / best('baseline', 'runtime'):.2f}")

    # kill -9 after the middle checkpoint, then resume: the tolerance a resumed run gives
    half = steps // 2
    resumed = {}
    for k, flag in (("baseline", False), ("precompute", True)):
        out = tmp / f"{k}-killed"
        _child("run", settings(out, flag), kill_after=out / f"checkpoint-{half}")
        resumed[k] = _child("resume", settings(out, flag))
    d_ways = _max_diff(tmp / "baseline0", tmp / "precompute0")
    d_resume_base = _max_diff(tmp / "baseline0", tmp / "baseline-killed")
    d_resume_pre = _max_diff(tmp / "precompute0", tmp / "precompute-killed")
    print(f"\nadapter max |difference| after {steps} steps: baseline vs precompute {d_ways:.3g}; "
          f"straight vs resumed after kill -9 at step {half}: baseline {d_resume_base:.3g}, "
          f"precompute {d_resume_pre:.3g} (resume reused the cache: {resumed['precompute']['reused']})")
    if tmp_ctx is not None:
        tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
