"""Run the stages in order, each cached in `<out>/<stage>/stage.json`.

A stage is one entry of `STAGES`: its function, the stages whose typed results it
takes (`needs`), and the settings its cache key hashes (with the key of the stage
it follows), so changing a stage's settings redoes it and everything downstream,
nothing upstream. A stage whose key matches and is marked done is skipped (no
model loaded) and its result read back from `stage.json`; one that started with
the same key but did not finish (a crash, kill -9) resumes: generation keeps its
finished records, training continues from its last checkpoint-N, evaluation
reuses the results store. A changed key wipes the stage folder first, so stale
artefacts never mix with new ones; only the eval folder is kept, because
everything in it is keyed by checkpoint fingerprint and settings (a new DPO
checkpoint is evaluated; the base model's answers are reused).

Adding a stage: write `stage_x(cfg, out, ..., **needs) -> XResult` in `stages.py`
and add one `Stage(...)` to `STAGES` (docs/pipeline.md, "Adding a stage").
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cai_bench.hashing import digest
from cai_bench.paths import atomic_write_text
from cai_bench.pipeline import stages as S
from cai_bench.pipeline.config import PipelineConfig

FORMAT = "cai-bench-pipeline/1"
# the eval stage runs HHH into the results store (format 2); a folder of format 1 redoes eval and report,
# reusing every stored answer
EVAL_FORMAT = "eval-into-store/2"
GATE_FIELDS = frozenset({"min_kept_fraction", "min_kept", "allow_low_quality"})
# data settings of the generate source that came after pipelines on bundled data were cached (not hashed for those)
GENERATE_ONLY = frozenset({"demonstrations", "answer_only", "retries"})
# settings added after pipelines were cached: hashed only when set, so existing stage keys stay as they were
NEW_WHEN_SET = {"data": ("drop_principles",), "eval": ("whole_tasks",)}


def _section(c: dict, name: str) -> dict:
    """A config section as its stage key hashes it: a newer setting left at its default is not hashed."""
    return {k: v for k, v in c[name].items() if not (k in NEW_WHEN_SET.get(name, ()) and not v)}


def _hash(obj: Any) -> str:
    return digest(obj, compact=False, ensure_ascii=True)


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


class Ctx:
    """What every stage function may use besides its inputs: the config, the console, a progress factory."""

    def __init__(self, cfg: PipelineConfig, console: Any, out: Path) -> None:
        self.cfg, self.console, self.out = cfg, console, out
        self.stages: dict[str, dict[str, Any]] = {}  # name -> {seconds, cached} of this invocation


def _task_content(spec: str | None) -> str | None:
    """A task folder's files, or a built-in task's definition (prompts, expectations, analyses):
    a new release of a built-in task redoes the loop on it."""
    if not spec or Path(spec).exists():
        return _file_hash(spec)
    from cai_bench.tasks import load_task

    return _hash(load_task(spec).model_dump(mode="json", exclude={"path"}))


def _task_settings(cfg: PipelineConfig, c: dict) -> list:
    synth = ([c["synthesize"], cfg.synthesizer, c["seed"]] if cfg.synthesize is not None else [])
    first = S.bundled_coverage(cfg)  # hashed only where it moves the split (partly covered tasks: Romania)
    return [FORMAT, c["task"], c["constitution"], c["prompts"], _file_hash(cfg.constitution),
            _file_hash(cfg.prompts), _task_content(cfg.task), c["split"], *synth,
            *([{"train_first": _hash(sorted(first))}] if first else [])]


def _data_settings(cfg: PipelineConfig, c: dict) -> list:
    # the gate's thresholds and the override flags are checks, not inputs: a stage stopped by the gate
    # resumes (generated records kept) when re-run with --allow-low-quality or --allow-overlap.
    # The eval sets are not inputs of the data: changing them re-checks leakage in the eval stage.
    data = {k: v for k, v in _section(c, "data").items() if k not in GATE_FIELDS}
    if cfg.data_source == "bundled":  # how a model would write the data does not change the bundled rows
        data = {k: v for k, v in data.items() if k not in GENERATE_ONLY}
    if data.get("engine") == "hf":  # keys written before data.engine existed still match
        del data["engine"]
    return [data, cfg.data_source, cfg.generator, c["seed"]]


def _eval_settings(c: dict) -> dict:
    """The eval settings its key hashes: the engine only when it is `vllm` (a finished eval stays
    valid under `auto` and `hf`, and keys written before engines existed still match)."""
    ev = _section(c, "eval")
    if ev.pop("engine", "auto") == "vllm":
        ev["engine"] = "vllm"
    else:
        ev.pop("vllm", None)
    return ev


def _run_task(ctx: Ctx, out: Path, resume: bool) -> S.TaskResult:
    return S.stage_task(ctx.cfg, out)


def _run_data(ctx: Ctx, out: Path, resume: bool, task: S.TaskResult) -> S.DataResult:
    from cai_bench.console import make_progress

    with make_progress() as progress:
        return S.stage_data(ctx.cfg, out, task, progress)


def _run_sft(ctx: Ctx, out: Path, resume: bool, task: S.TaskResult, data: S.DataResult) -> S.TrainResult:
    return S.stage_train("sft", ctx.cfg, out, resume, task=task, data=data)


def _run_dpo(ctx: Ctx, out: Path, resume: bool, task: S.TaskResult, data: S.DataResult,
             sft: S.TrainResult) -> S.TrainResult:
    return S.stage_train("dpo", ctx.cfg, out, resume, task=task, data=data, sft=sft)


def _run_eval(ctx: Ctx, out: Path, resume: bool, task: S.TaskResult, data: S.DataResult, sft: S.TrainResult,
              dpo: S.TrainResult) -> S.EvalResult:
    return S.stage_eval(ctx.cfg, out, ctx.console, task=task, data=data, sft=sft, dpo=dpo)


def _run_report(ctx: Ctx, out: Path, resume: bool, task: S.TaskResult, data: S.DataResult, sft: S.TrainResult,
                dpo: S.TrainResult, eval: S.EvalResult) -> S.ReportResult:
    return S.stage_report(ctx.cfg, out, dict(ctx.stages), task=task, data=data, sft=sft, dpo=dpo, eval=eval)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[..., Any]  # (ctx, out, resume, **needs) -> result dataclass
    result: type
    needs: tuple[str, ...]  # stages whose results it takes, by name
    after: str | None  # the stage whose key its key extends
    settings: Callable[[PipelineConfig, dict], list]  # what its key hashes besides `after`'s key
    content_keyed: bool = False  # folder kept when the key changes (everything in it is keyed by content)


STAGES: tuple[Stage, ...] = (
    Stage("task", _run_task, S.TaskResult, (), None, _task_settings),
    Stage("data", _run_data, S.DataResult, ("task",), "task", _data_settings),
    Stage("sft", _run_sft, S.TrainResult, ("task", "data"), "data",
          lambda cfg, c: [c["student"], c["sft"], _recipe_hash(cfg.sft.recipe),
                          *([] if c["train_seed"] is None else [{"train_seed": c["train_seed"]}])]),
    Stage("dpo", _run_dpo, S.TrainResult, ("task", "data", "sft"), "sft",
          lambda cfg, c: [c["dpo"], _recipe_hash(cfg.dpo.recipe)]),
    Stage("eval", _run_eval, S.EvalResult, ("task", "data", "sft", "dpo"), "dpo",
          lambda cfg, c: [_eval_settings(c), c["student"], EVAL_FORMAT], content_keyed=True),
    Stage("report", _run_report, S.ReportResult, ("task", "data", "sft", "dpo", "eval"), "eval",
          lambda cfg, c: [c["eval"]["n_boot"], c["seed"]]),
)


def stage_keys(cfg: PipelineConfig) -> dict[str, str]:
    """The cache key of each stage (its settings + the key of the stage it follows)."""
    c = json.loads(cfg.model_dump_json())
    keys: dict[str, str] = {}
    for st in STAGES:
        keys[st.name] = _hash([*([keys[st.after]] if st.after else []), *st.settings(cfg, c)])
    return keys


# files a stage result names, for stage.json files written before results named them (read, not redone)
_KNOWN_FILES = {"task": {"train_prompts": "train_prompts.jsonl", "split_file": "split.json"},
                "data": {"dir": ".", "quality_file": "quality.json", "leakage_file": "leakage.json",
                         "train_texts": "train_texts.json"},
                "sft": {"meta_file": "cai_bench.json", "provenance_file": "provenance.json", "guard_file": "guard.json"},
                "dpo": {"meta_file": "cai_bench.json", "provenance_file": "provenance.json", "guard_file": "guard.json"}}


def _from_info(kind: type, info: dict[str, Any], name: str = "", folder: Path | None = None) -> Any:
    names = {f.name for f in fields(kind)}
    if folder is not None:
        info = {**{k: str((folder / v).resolve()) for k, v in _KNOWN_FILES.get(name, {}).items()}, **info}
    return kind(**{k: v for k, v in info.items() if k in names})


class PipelineRun:
    """One invocation: runs or reuses each stage, times it and prints progress."""

    def __init__(self, cfg: PipelineConfig, console: Any) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out).expanduser().resolve()
        self.console = console
        self.keys = stage_keys(cfg)
        self.ctx = Ctx(cfg, console, self.out)
        self.results: dict[str, Any] = {}
        self.timings_file = self.out / "timings.json"
        self.timings: dict[str, float] = json.loads(self.timings_file.read_text()) \
            if self.timings_file.is_file() else {}

    def _eta(self, idx: int) -> str:
        rest = [self.timings.get(s.name) for s in STAGES[idx:]]
        if any(t is None for t in rest):
            return ""
        return f", ETA ~{sum(rest):.0f}s (stage times of the last run)"  # type: ignore[arg-type]

    def stage(self, idx: int, st: Stage) -> Any:
        sdir = self.out / st.name
        state_file = sdir / "stage.json"
        state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else None
        key = self.keys[st.name]
        label = f"[{idx + 1}/{len(STAGES)}] {st.name}"
        if state and state.get("key") == key and state.get("done"):
            seconds = state["info"].get("_seconds", 0)
            warnings = S.regate_cached(self.ctx.cfg, sdir.resolve()) if st.name == "data" else []
            self.console.print(f"[dim]{label}: cached ({seconds:.1f}s when run)[/dim]")
            for w in warnings:
                self.console.print(f"[bold yellow]warning:[/bold yellow] {w}")
            self.ctx.stages[st.name] = {"seconds": seconds, "cached": True}
            result = _from_info(st.result, state["info"], st.name, sdir)
            self.results[st.name] = result
            return result
        resume = bool(state and state.get("key") == key)
        if state and not resume and sdir.is_symlink():
            sdir.unlink()  # a stage shared by an experiment (a link into <exp>/stages/): never wipe the shared copy
        elif state and not resume and sdir.exists() and not st.content_keyed:
            shutil.rmtree(sdir)  # settings changed: redo from scratch
        if sdir.is_symlink():
            sdir = sdir.resolve()  # results name the shared folder, which keeps its content whatever links to it
        sdir.mkdir(parents=True, exist_ok=True)
        state_file = sdir / "stage.json"
        atomic_write_text(state_file, json.dumps({"key": key, "done": False}) + "\n")
        self.console.print(f"[bold]{label}[/bold]{' (resuming)' if resume else ''}{self._eta(idx)}")
        started = time.perf_counter()
        result = st.run(self.ctx, sdir, resume, **{n: self.results[n] for n in st.needs})
        seconds = round(time.perf_counter() - started, 2)
        info = dict(asdict(result), _seconds=seconds)
        atomic_write_text(state_file, json.dumps({"key": key, "done": True, "info": info}, indent=2, default=str)
                          + "\n")
        self.timings[st.name] = seconds
        atomic_write_text(self.timings_file, json.dumps(self.timings, indent=2) + "\n")
        for w in getattr(result, "warnings", []):
            self.console.print(f"[bold yellow]warning:[/bold yellow] {w}")
        self.console.print(f"  {st.name} done in {seconds:.1f}s")
        self.ctx.stages[st.name] = {"seconds": seconds, "cached": False}
        self.results[st.name] = result
        return result


def _summary(name: str, result: Any, cfg: PipelineConfig, out: Path) -> str | None:
    if name == "task":
        first = (f"; the {result.bundled_first} train prompts that the bundled data has rows for were put in "
                 "the train part first" if result.bundled_first else "")
        return (f"  split of {result.task}: {result.train} train / {result.eval} held-out eval prompts over "
                f"{result.principles} principles (seed {cfg.split.seed}{first}; {result.split_file})")
    if name == "data":
        return (f"  data ({result.generator}): kept sft {result.kept['sft']}/{result.total['sft']}, "
                f"prefs {result.kept['prefs']}/{result.total['prefs']}; leakage {result.leakage}")
    return None


def plan_lines(cfg: PipelineConfig) -> list[str]:
    """Each stage and whether a re-run would reuse it (`--dry-run`)."""
    out = Path(cfg.out).expanduser().resolve()
    keys = stage_keys(cfg)
    lines = [f"plan for {out}:"]
    for idx, st in enumerate(STAGES):
        state_file = out / st.name / "stage.json"
        state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else None
        status = ("cached" if state and state.get("key") == keys[st.name] and state.get("done")
                  else "resume" if state and state.get("key") == keys[st.name] else "run")
        lines.append(f"  [{idx + 1}/{len(STAGES)}] {st.name}: {status} (key {keys[st.name]})")
    return lines


def run_pipeline(cfg: PipelineConfig, console: Any, *, dry_run: bool = False) -> Any:
    """Every stage of `STAGES`; prints the loop's verdicts and returns its `reports.loop.LoopReport`
    (`dry_run`: the plan and the pre-flight, nothing written, None returned)."""
    from cai_bench.pipeline.preflight import preflight, require_verdicts
    from cai_bench.reports.terminal import print_loop_verdicts
    from cai_bench.reports.writer import prepare

    started = time.perf_counter()
    S.check_inputs(cfg)  # nothing is written for bad input
    pre = preflight(cfg)
    for line in pre.lines():
        console.print(line, highlight=False, markup=False)
    if dry_run:
        for line in plan_lines(cfg):
            console.print(line, highlight=False, markup=False)
        for w in require_verdicts(pre, allow=True):
            console.print(f"[yellow]warning:[/yellow] {w}")
        return None
    for w in require_verdicts(pre, allow=cfg.allow_no_verdict):
        console.print(f"[yellow]warning:[/yellow] {w}")
    p = PipelineRun(cfg, console)
    if cfg.profile.startswith("cpu"):  # torch threads for the cores other processes leave free; each stage re-measures
        from cai_bench.cpu_threads import apply

        apply("the pipeline")
    p.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p.out / "pipeline_config.json", cfg.model_dump_json(indent=2) + "\n")
    for idx, st in enumerate(STAGES):
        result = p.stage(idx, st)
        if (line := _summary(st.name, result, cfg, p.out)) is not None:
            console.print(line)
    ev, rep = p.results["eval"], p.results["report"]
    # the verdicts printed are the store's, as `cai-bench report` prints them (no model loaded)
    data = prepare(ev.store, formats=("md",), seed=cfg.seed, n_boot=cfg.eval.n_boot)
    mine = next(lr for lr in data.loops if lr.record.loop_id == rep.loop_id)
    print_loop_verdicts([mine], console)
    total = time.perf_counter() - started
    console.print("stage times: " + ", ".join(f"{k} {v['seconds']:.1f}s{' (cached)' if v['cached'] else ''}"
                                                for k, v in p.ctx.stages.items()) + f"; this run {total:.1f}s")
    console.print(f"report: {Path(rep.report) / 'pipeline.md'} (samples: {Path(rep.report) / 'samples.html'})")
    return mine
