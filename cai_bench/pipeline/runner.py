"""Run the stages in order, each cached in `<out>/<stage>/stage.json`.

A stage's key hashes its own settings and its upstream stage's key, so changing
a stage's settings redoes it and everything downstream, nothing upstream. A
stage whose key matches and is marked done is skipped (no model loaded); one
that started with the same key but did not finish (a crash, kill -9) resumes:
generation keeps its finished records, training continues from its last
checkpoint-N, evaluation reuses the results store. A changed key wipes the
stage folder first, so stale artefacts never mix with new ones; only the eval
folder is kept, because everything in it is keyed by checkpoint fingerprint and
settings (a new DPO checkpoint is evaluated; the base model's answers are reused).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from cai_bench.paths import atomic_write_text
from cai_bench.pipeline import stages as S
from cai_bench.pipeline.config import PipelineConfig

STAGES = ("task", "data", "sft", "dpo", "eval", "report")
FORMAT = "cai-bench-pipeline/1"
# stages whose folder is keyed by content (the results store by checkpoint fingerprint and
# generation settings, HHH files by fingerprint): kept on a change, so base answers are reused
CONTENT_KEYED = frozenset({"eval"})
GATE_FIELDS = frozenset({"min_kept_fraction", "min_kept", "allow_low_quality"})


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_hash(spec: str | None) -> str | None:
    if spec and Path(spec).is_file():
        return S.sha256_file(Path(spec))
    if spec and Path(spec).is_dir():
        return _hash(sorted((p.name, S.sha256_file(p)) for p in Path(spec).iterdir() if p.is_file()))
    return None


def _recipe_hash(name: str) -> str | None:
    """The recipe file's content: an edited recipe (or a re-tuned built-in) redoes its stage."""
    from cai_bench.training.recipe import list_recipes

    path = Path(name).expanduser()
    if not path.is_file():
        path = list_recipes().get(name, path)
    return S.sha256_file(path) if path.is_file() else None


def stage_keys(cfg: PipelineConfig) -> dict[str, str]:
    """The cache key of each stage (settings + upstream key)."""
    c = json.loads(cfg.model_dump_json())
    keys: dict[str, str] = {}
    synth = ([c["synthesize"], cfg.synthesizer, c["seed"]] if cfg.synthesize is not None else [])
    keys["task"] = _hash([FORMAT, c["task"], c["constitution"], c["prompts"], _file_hash(cfg.constitution),
                          _file_hash(cfg.prompts), _file_hash(cfg.task), c["split"], *synth])
    # the gate's thresholds and the override flags are checks, not inputs: a stage stopped by the gate
    # resumes (generated records kept) when re-run with --allow-low-quality or --allow-overlap
    data = {k: v for k, v in c["data"].items() if k not in GATE_FIELDS}
    # the eval sets are not inputs of the data: changing them re-checks leakage in the eval stage
    # (no model), it never redoes data or training
    keys["data"] = _hash([keys["task"], data, cfg.data_source, cfg.generator, c["seed"]])
    keys["sft"] = _hash([keys["data"], c["student"], c["sft"], _recipe_hash(cfg.sft.recipe)])
    keys["dpo"] = _hash([keys["sft"], c["dpo"], _recipe_hash(cfg.dpo.recipe)])
    keys["eval"] = _hash([keys["dpo"], c["eval"], c["student"]])
    keys["report"] = _hash([keys["eval"], c["eval"]["n_boot"], c["seed"]])
    return keys


class PipelineRun:
    """One invocation: runs or reuses each stage, times it and prints progress."""

    def __init__(self, cfg: PipelineConfig, console: Any) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out).expanduser().resolve()
        self.console = console
        self.keys = stage_keys(cfg)
        self.info: dict[str, dict] = {}
        self.timings_file = self.out / "timings.json"
        self.timings: dict[str, float] = json.loads(self.timings_file.read_text()) \
            if self.timings_file.is_file() else {}

    def _eta(self, idx: int) -> str:
        rest = [self.timings.get(s) for s in STAGES[idx:]]
        if any(t is None for t in rest):
            return ""
        return f", ETA ~{sum(rest):.0f}s (stage times of the last run)"  # type: ignore[arg-type]

    def stage(self, idx: int, name: str, fn: Callable[[bool], dict]) -> dict:
        sdir = self.out / name
        state_file = sdir / "stage.json"
        state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else None
        key = self.keys[name]
        label = f"[{idx + 1}/{len(STAGES)}] {name}"
        if state and state.get("key") == key and state.get("done"):
            self.console.print(f"[dim]{label}: cached ({state['info'].get('_seconds', 0):.1f}s when run)[/dim]")
            info = dict(state["info"], _cached=True)
            self.info[name] = info
            return info
        resume = bool(state and state.get("key") == key)
        if state and not resume and sdir.exists() and name not in CONTENT_KEYED:
            shutil.rmtree(sdir)  # settings changed: redo from scratch
        sdir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(state_file, json.dumps({"key": key, "done": False}) + "\n")
        self.console.print(f"[bold]{label}[/bold]{' (resuming)' if resume else ''}{self._eta(idx)}")
        started = time.perf_counter()
        info = fn(resume)
        info["_seconds"] = round(time.perf_counter() - started, 2)
        atomic_write_text(state_file, json.dumps({"key": key, "done": True, "info": info}, indent=2, default=str) + "\n")
        self.timings[name] = info["_seconds"]
        atomic_write_text(self.timings_file, json.dumps(self.timings, indent=2) + "\n")
        for w in info.get("warnings", []):
            self.console.print(f"[bold yellow]warning:[/bold yellow] {w}")
        self.console.print(f"  {name} done in {info['_seconds']:.1f}s")
        self.info[name] = dict(info, _cached=False)
        return info


def run_pipeline(cfg: PipelineConfig, console: Any) -> dict:
    """All six stages; returns the report data (verdict rows, guards, ...)."""
    from cai_bench.console import make_progress
    from cai_bench.pipeline import report as R

    from cai_bench.cpu_threads import busy_cpu_hint

    started = time.perf_counter()
    p = PipelineRun(cfg, console)
    if cfg.profile.startswith("cpu") and (hint := busy_cpu_hint()):
        console.print(f"[yellow]note:[/yellow] {hint}")
    p.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p.out / "pipeline_config.json", cfg.model_dump_json(indent=2) + "\n")
    task = p.stage(0, "task", lambda resume: S.stage_task(cfg, p.out / "task"))
    console.print(f"  split of {task['task']}: {task['train']} train / {task['eval']} held-out eval prompts over "
                  f"{task['principles']} principles (seed {cfg.split.seed}; {p.out / 'task' / 'split.json'})")

    def data(resume: bool) -> dict:
        with make_progress() as progress:
            return S.stage_data(cfg, p.out / "data", task, progress)

    d = p.stage(1, "data", data)
    console.print(f"  data ({d['generator']}): kept sft {d['kept']['sft']}/{d['total']['sft']}, "
                  f"prefs {d['kept']['prefs']}/{d['total']['prefs']}; leakage {d['leakage']}")
    p.stage(2, "sft", lambda resume: S.stage_train("sft", cfg, p.out / "sft", p.out / "data", cfg.student, d, resume,
                                                                  task))
    p.stage(3, "dpo", lambda resume: S.stage_train("dpo", cfg, p.out / "dpo", p.out / "data", str(p.out / "sft"),
                                                   d, resume, task))
    ckpts = S.checkpoints(cfg, p.out)
    p.stage(4, "eval", lambda resume: S.stage_eval(cfg, p.out / "eval", task, ckpts, console))

    def report(resume: bool) -> dict:
        data_ = R.build(p.out, cfg, {k: v for k, v in p.info.items()})
        dest = R.write(p.out, data_)
        return {"report": str(dest), "guard_warnings": data_["warnings"]}  # printed with the verdicts

    p.stage(5, "report", report)
    data_ = json.loads((p.out / "report" / "pipeline.json").read_text(encoding="utf-8"))
    R.print_verdicts(data_, console)
    total = time.perf_counter() - started
    console.print("stage times: " + ", ".join(f"{k} {v.get('_seconds', 0):.1f}s{' (cached)' if v.get('_cached') else ''}"
                                                for k, v in p.info.items()) + f"; this run {total:.1f}s")
    console.print(f"report: {p.out / 'report' / 'pipeline.md'} (samples: {p.out / 'report' / 'samples.html'})")
    return data_
