"""Reliability campaign (issue 13 section 7), printed as one table:

1. kill -9 at seeded random points of `run`, `generate` and `train` (a tiny
   in-process Llama with SmolLM2's tokenizer), then the same command again:
   finished units lost (0), units duplicated (0), resumed outputs equal to an
   uninterrupted run's (greedy decoding); `train --resume` starts from the last
   saved checkpoint and reaches max_steps;
2. a loopback fault server (tests/loopback.py, the real OpenAI and Ollama
   protocols) behind every remote path (benchmarks/reliability_faults.py: `run`
   with openai:/ollama: checkpoints, the moderation scorer in `run` and `score`,
   the judge with the openai and ollama backends, `generate` and `tasks
   synthesize` with openai:/ollama: writers): 429 with Retry-After, 500, 503, a
   hang past the timeout, a connection reset, truncated JSON, a wrong schema:
   the command completes, failures are recorded, the same command again fills them;
3. the malformed-input corpus (tests/io/malformed): exit code 2, one line, no
   traceback, nothing written.

Each trial is a real process: forked from this (warm) interpreter, so a trial
costs the command, not Python's imports, and killed with SIGKILL.
Usage: python benchmarks/bench_reliability.py [--trials 10] [--seed 0] [--prompts 6]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parents[1]
TASK = "cai_south_africa"


@dataclass
class Trials:
    """Figures for one command over its kill -9 trials."""

    name: str
    trials: int = 0
    killed: int = 0  # trials where the kill landed before the command finished
    lost: int = 0
    duplicated: int = 0
    equal: int = 0  # resumed output equal to the uninterrupted run's
    resumed_right: int = 0  # train: resumed from the last complete checkpoint
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- processes


def warm_imports() -> None:
    """Import the heavy libraries once so each forked trial starts warm (no torch op runs here)."""
    import lm_eval  # noqa: F401
    import peft  # noqa: F401
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401

    import cai_bench.cli  # noqa: F401


def spawn(args: list[str], log: Path, cwd: Path) -> int:
    """Fork a child that runs `cai-bench ARGS` with its output in `log`; returns its pid."""
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.chdir(cwd)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            if "torch" in sys.modules:  # an OpenMP pool the parent used does not survive fork(): stay inline
                sys.modules["torch"].set_num_threads(1)
            from cai_bench.cli import app

            try:
                app(args=args, prog_name="cai-bench", standalone_mode=False)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException as exc:  # noqa: BLE001 - reported through the exit code
                print(f"child: {type(exc).__name__}: {exc}", file=sys.stderr)
                code = 3
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def finish(args: list[str], log: Path, cwd: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    pid = spawn(args, log, cwd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - t0


def kill_after(args: list[str], delay: float, log: Path, cwd: Path) -> bool:
    """Start the command and SIGKILL it after `delay` s; True if it was still running."""
    pid = spawn(args, log, cwd)
    deadline = time.perf_counter() + delay
    while time.perf_counter() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return True


# ---------------------------------------------------------------- inputs


def tiny_model(dest: Path) -> Path:
    """The test suite's tiny random Llama (tests/tiny_models.py) with SmolLM2's tokenizer and chat template."""
    from cai_bench.models import BUNDLED

    if (dest / "config.json").is_file():
        return dest
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import build_tiny_llama

    return build_tiny_llama(Path(BUNDLED["smollm2-135m-instruct"].prepare()), dest)


def sft_data(dest: Path, n: int = 24) -> Path:
    """A `generate`-format folder (sft/train.jsonl, sft/test.jsonl) from the task's prompts and references."""
    from cai_bench.tasks import load_task

    rows = [{"messages": [{"role": "user", "content": p.prompt},
                          {"role": "assistant", "content": p.reference or "I can help with that respectfully."}]}
            for p in load_task(TASK).prompts[:n]]
    (dest / "sft").mkdir(parents=True, exist_ok=True)
    for split, part in (("train", rows[: n - 4]), ("test", rows[n - 4:])):
        (dest / "sft" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    return dest


# ---------------------------------------------------------------- state readers


def store_state(db: Path) -> tuple[dict, dict, int, int]:
    """(generations by key, ok scores by key, duplicated generations, duplicated scores)."""
    if not db.is_file():
        return {}, {}, 0, 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        gens = {(f, t, p, g): r for f, t, p, g, r in con.execute(
            "select fingerprint, task_id, prompt_id, gen_hash, response from generations")}
        dup_g = con.execute("select count(*) - count(distinct fingerprint || '|' || task_id || '|' || prompt_id "
                            "|| '|' || gen_hash) from generations").fetchone()[0]
        scores = {(g, s, m): v for g, s, m, v in con.execute(
            "select g.prompt_id, s.scorer_id, s.metric, round(s.value, 6) from scores s "
            "join generations g on g.generation_id = s.generation_id where s.status = 'ok'")}
        dup_s = con.execute("select count(*) - count(distinct generation_id || '|' || scorer_id || '|' || "
                            "scorer_hash || '|' || metric) from scores").fetchone()[0]
    except sqlite3.DatabaseError:
        return {}, {}, 0, 0
    finally:
        con.close()
    return gens, scores, dup_g, dup_s


def records_state(path: Path) -> tuple[dict, int]:
    """Complete CAI records by id (what a resume keeps) and how many ids repeat in the file."""
    from cai_bench.generation.store import read_records

    if not path.is_file():
        return {}, 0
    recs = {r.id: (r.init_response, r.critic_response, r.revision_response) for r in read_records(path)}
    ids = []
    for raw in path.read_bytes().splitlines(keepends=True):
        if raw.endswith(b"\n") and raw.strip():
            try:
                ids.append(json.loads(raw)["id"])
            except (ValueError, KeyError):
                pass
    return recs, len(ids) - len(set(ids))


def checkpoints(out: Path) -> list[int]:
    """Steps of the complete checkpoints in a training output dir."""
    return sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*")
                  if (p / "trainer_state.json").is_file())


# ---------------------------------------------------------------- campaigns


def campaign_run(work: Path, model: Path, trials: int, rng: random.Random, prompts: int) -> Trials:
    res = Trials("run")
    args = ["run", "-c", str(model), "-t", TASK, "-n", str(prompts), "-s", "similarity", "--max-new-tokens", "12",
            "--chunk-size", "1", "--batch-size", "1", "--no-report"]
    ref = work / "run_ref"
    code, secs = finish([*args, "--out", str(ref)], work / "run_ref.log", work)
    assert code == 0, (work / "run_ref.log").read_text()[-2000:]
    ref_gens, ref_scores, _, _ = store_state(ref / "results.sqlite")
    for i in range(trials):
        out = work / f"run_{i}"
        res.killed += kill_after([*args, "--out", str(out)], rng.uniform(0.05, 1.0) * secs, work / f"run_{i}.log", work)
        before, before_s, _, _ = store_state(out / "results.sqlite")
        code, _ = finish([*args, "--out", str(out)], work / f"run_{i}.log", work)
        after, after_s, dup_g, dup_s = store_state(out / "results.sqlite")
        res.trials += 1
        res.lost += sum(1 for k, v in before.items() if after.get(k) != v)
        res.lost += sum(1 for k, v in before_s.items() if after_s.get(k) != v)
        res.duplicated += dup_g + dup_s
        res.equal += int(code == 0 and after == ref_gens and after_s == ref_scores)
    res.notes.append(f"uninterrupted run {secs:.1f} s, {len(ref_gens)} responses, {len(ref_scores)} scores")
    return res


def campaign_generate(work: Path, model: Path, trials: int, rng: random.Random, prompts: int) -> Trials:
    res = Trials("generate")
    args = ["generate", "-c", "south_africa", "-p", TASK, "--n", str(prompts), "-m", str(model),
            "--max-new-tokens", "12", "--batch-size", "1", "--test-size", "0"]
    ref = work / "gen_ref"
    code, secs = finish([*args, "--out", str(ref)], work / "gen_ref.log", work)
    assert code == 0, (work / "gen_ref.log").read_text()[-2000:]
    ref_recs, _ = records_state(ref / "records.jsonl")
    for i in range(trials):
        out = work / f"gen_{i}"
        res.killed += kill_after([*args, "--out", str(out)], rng.uniform(0.05, 1.0) * secs, work / f"gen_{i}.log", work)
        before, _ = records_state(out / "records.jsonl")
        code, _ = finish([*args, "--out", str(out)], work / f"gen_{i}.log", work)
        after, dup = records_state(out / "records.jsonl")
        res.trials += 1
        res.lost += sum(1 for k, v in before.items() if after.get(k) != v)
        res.duplicated += dup
        res.equal += int(code == 0 and after == ref_recs)
    res.notes.append(f"uninterrupted generate {secs:.1f} s, {len(ref_recs)} records")
    return res


def campaign_train(work: Path, model: Path, trials: int, rng: random.Random, steps: int = 8) -> Trials:
    res = Trials("train")
    data = sft_data(work / "sft_data")
    recipe = work / "recipe.yaml"
    recipe.write_text(
        f"stage: sft\nmodel_name_or_path: {model}\ntorch_dtype: float32\nload_in_4bit: false\nuse_peft: true\n"
        f"lora_r: 4\nlora_alpha: 8\nlora_target_modules: all-linear\ndataset_mixer:\n  {data}: 1.0\n"
        f"max_steps: {steps}\nsave_steps: 2\nsave_total_limit: null\nper_device_train_batch_size: 2\n"
        "gradient_checkpointing: false\nmax_length: 128\nlogging_steps: 1\nlearning_rate: 1.0e-3\n"
        f"output_dir: {work / 'unused'}\nreport_to: none\n", encoding="utf-8")
    code, secs = finish(["train", "sft", str(recipe), "-o", str(work / "train_ref")], work / "train_ref.log", work)
    assert code == 0, (work / "train_ref.log").read_text()[-2000:]
    for i in range(trials):
        out = work / f"train_{i}"
        log = work / f"train_{i}.log"
        killed = kill_after(["train", "sft", str(recipe), "-o", str(out)], rng.uniform(0.05, 1.0) * secs, log, work)
        res.killed += killed
        saved = checkpoints(out)
        mark = log.stat().st_size if log.exists() else 0
        code, _ = finish(["train", "sft", str(recipe), "-o", str(out), "--resume"], log, work)
        text = log.read_bytes()[mark:].decode("utf-8", "replace")
        m = re.search(r"resuming from \S*checkpoint-(\d+)|already finished at step (\d+)", " ".join(text.split()))
        resumed = int(m.group(1) or m.group(2)) if m else 0
        done = code == 0 and (out / "cai_bench.json").is_file()
        final = json.loads((out / "cai_bench.json").read_text()).get("metrics", {}) if done else {}
        res.trials += 1
        res.resumed_right += int(done and resumed == (saved[-1] if saved else 0))
        res.lost += int(bool(saved) and not set(saved) <= set(checkpoints(out)))
        loads = done and _loads_in_run(out)
        res.equal += int(done and final.get("global_step") == steps and loads)
        if not (done and final.get("global_step") == steps and loads):
            res.notes.append(f"trial {i}: exit {code}, killed before the end: {killed}, saved {saved}, resumed from "
                             f"{resumed}, global_step {final.get('global_step')}, loads in run: {loads}; "
                             f"{text.strip().splitlines()[-1:]}")
    res.notes.append(f"uninterrupted train {secs:.1f} s ({steps} steps, a checkpoint every 2)")
    return res


def _loads_in_run(out: Path) -> bool:
    """The trained output resolves as a `run` checkpoint (adapter + its base)."""
    from cai_bench.models import resolve_checkpoint

    try:
        return resolve_checkpoint(str(out)).fingerprint is not None
    except Exception:  # noqa: BLE001 - counted as not loadable
        return False


def remote_faults(work: Path, rng: random.Random) -> None:
    """The loopback fault campaign over every remote path, printed as a table."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import reliability_faults as rf

    print(f"loopback faults on every remote path: each of {', '.join(rf.FAULTS)} queued {rf.ATTEMPTS}x in a row "
          f"(= max_attempts; timeout {rf.TIMEOUT:g} s, hang {rf.HANG:g} s), seeded order; then the same command again")
    results = rf.campaign_remote(work / "faults", rng, finish)
    print(rf.table(results))
    print(f"all paths: {sum(r.ok for r in results)}/{len(results)} completed with one failed unit per fault "
          "recorded, then filled by the re-run (0 left, 0 duplicated)\n", flush=True)


def campaign_malformed() -> dict:
    import yaml

    sys.path.insert(0, str(ROOT / "tests" / "io"))
    cases = yaml.safe_load((ROOT / "tests" / "io" / "malformed" / "cases.yaml").read_text(encoding="utf-8"))
    import pytest

    code = pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "io" / "test_malformed_corpus.py")])
    return {"cases": len(cases), "all_pass": code == 0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--only", nargs="*", default=["run", "generate", "train", "faults", "malformed"])
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["CAI_BENCH_HOME"] = os.environ.get("CAI_BENCH_HOME", str(Path.home() / ".cache" / "cai-bench"))
        model = tiny_model(work / "tiny")
        warm_imports()
        if "faults" in a.only:
            remote_faults(work, random.Random(a.seed))
        if {"run", "generate", "train"} & set(a.only):
            print(f"kill -9 campaign (seed {a.seed}, {a.trials} trials per command)")
            print(f"{'command':10} {'trials':>6} {'killed':>6} {'lost':>5} {'dup':>4} {'equal':>6} "
                  f"{'resumed@last':>12}")
            print("(equal: resumed output equal to the uninterrupted run's; for train: reached max_steps and loads "
                  "in run)", flush=True)
        for name, fn in (("run", lambda: campaign_run(work, model, a.trials, rng, a.prompts)),
                         ("generate", lambda: campaign_generate(work, model, a.trials, rng, a.prompts)),
                         ("train", lambda: campaign_train(work, model, a.trials, rng))):
            if name not in a.only:
                continue
            t0 = time.perf_counter()
            r = fn()
            rs = f"{r.resumed_right}/{r.trials}" if r.name == "train" else "-"
            print(f"{r.name:10} {r.trials:>6} {r.killed:>6} {r.lost:>5} {r.duplicated:>4} "
                  f"{r.equal:>3}/{r.trials:<2} {rs:>12}   ({time.perf_counter() - t0:.0f} s)")
            for n in r.notes:
                print(f"  {n}")
            sys.stdout.flush()
        if "malformed" in a.only:
            m = campaign_malformed()
            print(f"\nmalformed-input corpus: {m['cases']} cases, all exit 2 with one line and nothing written: "
                  f"{m['all_pass']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
