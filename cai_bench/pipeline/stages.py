"""The stages of the CAI loop. Each is one function that takes the config, its own
folder and the typed results of the stages it depends on, does its work with the
existing packages (tasks, generation, training, harness, reports), writes under
its own folder only (the results store excepted: its URL is an input, and several
pipelines may share one store) and returns a small dataclass that the runner
keeps in `stage.json`.

    task  -> <out>/task/   split.json, eval_task/ (held-out part as a task folder), train_prompts.jsonl
    data  -> <out>/data/   sft/, prefs/ (generate format), quality.json, leakage.json, train_texts.json
    sft   -> <out>/sft/    adapter + cai_bench.json (+ provenance.json, guard.json)
    dpo   -> <out>/dpo/    adapter + cai_bench.json (+ provenance.json, guard.json)
    eval  -> <out>/eval/   `cai-bench run` of base, SFT and DPO into the results store, HHH included
    report-> <out>/report/ the loop's record in the store, then the `reports` package's report of the
                           store (pipeline.md, pipeline.json, samples.html, index.html, ...)
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import defaultdict
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from cai_bench.errors import UserError
from cai_bench.hashing import sha256_file
from cai_bench.paths import atomic_write_text
from cai_bench.pipeline.config import BUNDLED_DATA, PipelineConfig
from cai_bench.pipeline.engine import eval_engine, eval_vllm_settings, serving

log = logging.getLogger("cai_bench.pipeline")


@dataclass
class TaskResult:
    task: str
    constitution: str  # an id, or the path of a user constitution
    culture: str
    eval_task: str  # folder of the held-out part as a task
    eval_task_id: str
    train: int
    eval: int
    principles: int
    train_prompts: str  # jsonl of the train part
    split_file: str
    bundled_first: int = 0  # prompts put in the train part first because only they have bundled rows


@dataclass
class DataResult:
    source: str
    generator: str
    splits: dict[str, dict[str, int]]
    sha256: dict[str, str]
    kept: dict[str, int]
    total: dict[str, int]
    leakage: int
    dir: str  # holds sft/ and prefs/ (the `generate` format the recipes read)
    quality_file: str
    leakage_file: str
    train_texts: str  # the kept training prompts per set, for the eval stage's leakage re-check
    warnings: list[str] = field(default_factory=list)


@dataclass
class TrainResult:
    output_dir: str
    train_rows: int | None
    final_loss: float | None
    steps: int | None
    meta_file: str  # cai_bench.json: the trainer log
    provenance_file: str
    guard_file: str | None = None
    guards: list[dict[str, Any]] = field(default_factory=list)
    max_abs_margin: float | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class EvalResult:
    store: str
    fingerprints: dict[str, str]  # role -> fingerprint
    checkpoints: dict[str, str]  # role -> spec
    tasks: list[str]  # task ids as stored
    generated: int
    leakage_file: str
    engine: str = "hf"  # who generated the answers: hf (transformers) or vllm (eval.engine)


@dataclass
class ReportResult:
    report: str
    loop_id: str
    guard_warnings: list[str] = field(default_factory=list)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


# ---------------------------------------------------------------- task
def synthesize_prompts(cfg: PipelineConfig, out: Path, console: Any = None):
    """`tasks synthesize` into <out>/synth/ with progress; its journal there keeps finished
    items, so an interrupted task stage continues the synthesis."""
    from cai_bench.console import make_progress
    from cai_bench.generation.synthesize import SynthesisConfig, synthesize_task
    from cai_bench.tasks import load_task

    s = cfg.synthesize
    assert s is not None and cfg.constitution
    from cai_bench.constitutions import load_constitution

    cid = load_constitution(cfg.constitution).id
    scfg = SynthesisConfig(task_id=f"{cid}_synth"[:60], constitution=cfg.constitution, model=cfg.synthesizer,
                           per_principle=s.per_principle, max_new_tokens=s.max_new_tokens, temperature=s.temperature,
                           seed=cfg.seed, retries=s.retries, batch_size=s.batch_size, dest=out / "synth")
    with make_progress() as progress:
        bar = progress.add_task(f"synthesize prompts with {cfg.synthesizer}", total=None)
        result = synthesize_task(scfg, on_progress=lambda done, total: progress.update(bar, completed=done,
                                                                                       total=total))
    if result.short_principles:
        log.warning("synthesis: %d principle(s) got fewer than %d prompts: %s", len(result.short_principles),
                    s.per_principle, ", ".join(result.short_principles[:8]))
    task = load_task(str(result.path))
    return task, result


def load_source_task(cfg: PipelineConfig, out: Path | None = None):
    """The task to split: a built-in/folder task, a constitution + prompts file, or a
    constitution whose prompts a model writes (`synthesize`)."""
    from cai_bench.constitutions import load_constitution
    from cai_bench.tasks import Task, load_task, read_prompts_file, task_constitution

    if cfg.task:
        task = load_task(cfg.task)
        return task, task_constitution(task)
    if cfg.synthesize is not None:
        task, _ = synthesize_prompts(cfg, out or Path(cfg.out) / "task")
        return task, task_constitution(task)
    constitution = load_constitution(cfg.constitution)
    prompts = read_prompts_file(Path(cfg.prompts))
    known = set(constitution.principle_ids)
    bad = [p.id for p in prompts if p.principle_id and p.principle_id not in known]
    if bad:
        raise UserError(f"{cfg.prompts}: prompt(s) {bad[:5]} name a principle that {constitution.id!r} lacks")
    # prompts that state `expect` are judged on it: refusal on the requests to refuse, over-refusal on the rest
    analyses = ["refusal"] if any("expect" in p.model_fields_set for p in prompts) else []
    task = Task(id=f"{constitution.id}_prompts"[:60], constitution=constitution.id, culture=constitution.culture,
                description=f"prompts from {cfg.prompts}", prompts=prompts, analyses=analyses)
    return task, constitution


def check_inputs(cfg: PipelineConfig) -> None:
    """The task, constitution and prompts file load (one line each when not), before the
    pipeline writes anything: bad input leaves no output folder behind."""
    from cai_bench.constitutions import load_constitution
    from cai_bench.tasks import load_task, read_prompts_file

    if cfg.task:
        load_task(cfg.task)
        return
    load_constitution(cfg.constitution)
    if cfg.prompts:
        read_prompts_file(Path(cfg.prompts))


def stratified_split(prompts: list, *, fraction: float, seed: int, max_train: int | None,
                     max_eval: int | None, train_first: frozenset[str] = frozenset()) -> tuple[list, list]:
    """Per principle: shuffle by seed, hold out round(n * fraction) (at least one where
    a principle has two or more prompts); caps then take prompts round-robin over
    principles so every principle stays represented. `train_first`: ids that go to the
    train part before the others of their principle (the prompts bundled data covers)."""
    groups: dict[str, list] = defaultdict(list)
    for p in prompts:
        groups[p.principle_id or "_none"].append(p)
    train_g: dict[str, list] = {}
    eval_g: dict[str, list] = {}
    for key in sorted(groups):
        g = sorted(groups[key], key=lambda p: p.id)
        random.Random(f"{seed}:{key}").shuffle(g)
        if train_first:  # held out from the end of the others, trained on from the front of the covered
            g = [p for p in g if p.id not in train_first] + [p for p in g if p.id in train_first]
        k = round(len(g) * fraction)
        if len(g) >= 2:
            k = min(max(k, 1), len(g) - 1)
        eval_g[key], train_g[key] = g[:k], g[k:]
        if train_first:
            train_g[key].sort(key=lambda p: p.id not in train_first)  # stable: the covered ones first

    def cap(gs: dict[str, list], limit: int | None) -> list:
        out: list = []
        pools = [list(gs[k]) for k in sorted(gs)]
        while any(pools) and (limit is None or len(out) < limit):
            for pool in pools:
                if pool and (limit is None or len(out) < limit):
                    out.append(pool.pop(0))
        order = {p.id: i for i, p in enumerate(prompts)}
        return sorted(out, key=lambda p: order[p.id])

    return cap(train_g, max_train), cap(eval_g, max_eval)


def bundled_coverage(cfg: PipelineConfig) -> frozenset[str]:
    """The prompt ids of the task that the bundled GPT-4o data has rows for, when it covers only
    part of the task (Romania: one SFT row and two preference rows for one prompt per principle,
    33 of 330 prompts), else empty: with full coverage (South Africa) the split stays as it was.
    The split then puts the covered prompts in the train part first, since a train prompt
    without rows trains nothing (a 64-prompt train part held 6 of the 33 before)."""
    if cfg.data_source != "bundled" or cfg.task not in BUNDLED_DATA:
        return frozenset()
    from cai_bench.constitutions import load_constitution
    from cai_bench.tasks import load_task

    task = load_task(cfg.task)
    pids = list(load_constitution(task.constitution).principle_ids)
    sft, prefs, _ = bundled_rows(cfg, [p.model_dump() for p in task.prompts], pids)
    covered = frozenset(r["id"] for r in sft + prefs)
    return covered if len(covered) < len(task.prompts) else frozenset()


def stage_task(cfg: PipelineConfig, out: Path) -> TaskResult:
    from cai_bench.tasks import write_task_folder

    task, constitution = load_source_task(cfg, out)
    first = bundled_coverage(cfg)
    train, held = stratified_split(task.prompts, fraction=cfg.split.eval_fraction, seed=cfg.split.seed,
                                   max_train=cfg.split.max_train, max_eval=cfg.split.max_eval, train_first=first)
    if not train or not held:
        raise UserError(f"task {task.id!r}: {len(task.prompts)} prompts are too few to split into train and eval")
    if not any(p.principle_id for p in task.prompts):
        log.warning("task %s: no prompt carries a principle_id, so the split is not stratified by principle and the "
                    "report has no per-principle rows; give each prompt a principle_id (one of %s's principles)",
                    task.id, constitution.id)
    eval_id = f"{task.id}_heldout"[:64]
    eval_task = task.model_copy(update={"id": eval_id, "prompts": held, "path": None,
                                        "description": f"held-out eval part of {task.id} (pipeline split, "
                                                       f"seed {cfg.split.seed})"})
    folder = out / "eval_task"
    folder.mkdir(parents=True, exist_ok=True)
    ctext = None
    if constitution.path is not None and not str(constitution.path).startswith(str(Path(__file__).parents[1])):
        ctext = Path(constitution.path).read_text(encoding="utf-8")  # a user constitution travels with the task
    write_task_folder(eval_task, folder, ctext)
    atomic_write_text(out / "train_prompts.jsonl", _jsonl([p.model_dump(exclude_none=True) for p in train]))
    per = defaultdict(lambda: [0, 0])
    for p in train:
        per[p.principle_id or "_none"][0] += 1
    for p in held:
        per[p.principle_id or "_none"][1] += 1
    n_first = sum(1 for p in train if p.id in first)
    split = {"task": task.id, "constitution": constitution.id, "culture": task.culture, "seed": cfg.split.seed,
             "eval_fraction": cfg.split.eval_fraction, **({"bundled_first": n_first} if first else {}),
             "train": [p.id for p in train], "eval": [p.id for p in held],
             "per_principle": {k: {"train": v[0], "eval": v[1]} for k, v in sorted(per.items())}}
    atomic_write_text(out / "split.json", json.dumps(split, indent=2) + "\n")
    constitution_ref = str(constitution.path) if ctext is not None else constitution.id
    return TaskResult(task=task.id, constitution=constitution_ref, culture=task.culture, eval_task=str(folder),
                      eval_task_id=eval_id, train=len(train), eval=len(held), principles=len(per),
                      train_prompts=str(out / "train_prompts.jsonl"), split_file=str(out / "split.json"),
                      bundled_first=n_first)


# ---------------------------------------------------------------- data
def bundled_root(cfg: PipelineConfig) -> Path:
    """The folder holding bluedot_cai/{sa,ro}: data.bundled_dir's, else $CAI_BENCH_SHARED_DATA's, else the
    copy packaged with cai-bench (cai_bench/data), so a bare install needs no data folder."""
    from cai_bench.data import bluedot_root

    root = bluedot_root(cfg.data.bundled_dir)
    if root is None or not root.is_dir():
        raise UserError("data.source bundled: the bluedot_cai data folder was not found. Fix: set data.bundled_dir "
                        "(or $CAI_BENCH_SHARED_DATA) to the folder holding bluedot_cai/")
    return root


def hhh_source(cfg: PipelineConfig) -> str | None:
    """eval.hhh_path, else $CAI_BENCH_HHH_PATH, else the copy in the shared data folder the
    bundled CAI data comes from (so an offline built-in run finds it), else the loader's order (the
    copy `cai-bench data fetch hhh` stored; never a download)."""
    from cai_bench.shared_data import find_shared
    from cai_bench.tasks import hhh

    if cfg.eval.hhh_path or os.environ.get("CAI_BENCH_HHH_PATH"):
        return cfg.eval.hhh_path
    found = find_shared(hhh.SHARED_REL, cfg.data.bundled_dir)
    return str(found) if found else None


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def bundled_rows(cfg: PipelineConfig, train_prompts: list[dict], principle_ids: list[str]) -> tuple[list[dict], list[dict], str]:
    """GPT-4o critique/revision rows and preference rows of the train prompts only.

    A row keyed "i_j" belongs to the j-th red-team prompt of the i-th principle (the
    built-in task's prompt `<principle>-<j+1>`); other rows (Romanian data is keyed by
    principle only) are matched by their normalised prompt text. A row's prompt is the
    task's own text: some upstream `initial_prompt`s carry a "Red team prompt:" wrapper."""
    root = bundled_root(cfg) / BUNDLED_DATA[cfg.task]
    by_id = {p["id"]: p for p in train_prompts}
    by_text = {_norm(p["prompt"]): p for p in train_prompts}

    def owner(key: str, text: str) -> dict | None:
        i, sep, j = key.partition("_")
        if sep and i.isdigit() and j.isdigit() and int(i) < len(principle_ids):
            return by_id.get(f"{principle_ids[int(i)]}-{int(j) + 1}")
        return by_text.get(_norm(text))

    sft_raw = json.loads((root / "sft_dataset.json").read_text(encoding="utf-8"))
    pref_raw = json.loads((root / "pref_dataset.json").read_text(encoding="utf-8"))
    sft, prefs = [], []
    for key, rows in sft_raw.items():
        for r in rows:
            p = owner(key, r["initial_prompt"])
            if p:
                sft.append({"id": p["id"], "prompt": p["prompt"], "init_response": r["initial_response"],
                            "critic_response": r.get("critique_response", ""),
                            "revision_response": r["revision_response"], "principle_id": p.get("principle_id")})
    for key, rows in pref_raw.items():
        for r in rows:
            p = owner(key, r["prompt"])
            if p:
                prefs.append({"id": p["id"], "prompt": p["prompt"], "init_response": r["rejected_response"],
                              "revision_response": r["chosen_response"], "principle_id": p.get("principle_id")})
    return sft, prefs, str(root)


def generated_rows(cfg: PipelineConfig, task: TaskResult, out: Path, progress: Any,
                   train_prompts: str | None = None) -> tuple[list[dict], list[dict], str]:
    from cai_bench.generation.pipeline import GenerateConfig, generate
    from cai_bench.generation.store import read_records

    gen_out = out / "generated"
    gcfg = GenerateConfig(constitution=task.constitution, prompts=train_prompts or task.train_prompts,
                          model=cfg.generator, out=gen_out, selection=cfg.data.selection, seed=cfg.seed,
                          max_new_tokens=cfg.data.max_new_tokens, batch_size=cfg.data.batch_size, test_size=0.0,
                          keep_truncated=False, answer_only=cfg.data.answer_only,
                          demonstrations=cfg.data.demonstrations, retries=cfg.data.retries, engine=cfg.data.engine,
                          vllm=eval_vllm_settings(cfg))
    n_prompts = len(read_jsonl(Path(train_prompts))) if train_prompts else task.train
    bar = (progress.add_task(f"generate CAI data with {cfg.generator} (model calls: 3 per prompt)", total=3 * n_prompts)
           if progress else None)
    generate(gcfg, on_progress=(lambda done, total: progress.update(bar, completed=done, total=total))
             if progress else None)
    rows = []
    for r in read_records(gen_out / "records.jsonl"):
        rows.append({"id": r.id, "prompt": r.init_prompt, "init_response": r.init_response,
                     "critic_response": r.critic_response, "revision_response": r.revision_response,
                     "principle_id": r.principle_id, "finish_reasons": r.finish_reasons, "drop_reason": r.drop_reason,
                     "revision_attempt": r.revision_attempt})
    return rows, [dict(r) for r in rows], cfg.generator


def _write_split(out: Path, kind: str, rows: list[dict], *, seed: int, test_size: float) -> dict:
    rows = sorted(rows, key=lambda r: (r["id"], r["revision_response"]))
    random.Random(seed).shuffle(rows)
    n_test = int(round(len(rows) * test_size))
    if test_size > 0 and len(rows) >= 4:
        n_test = max(n_test, 1)
    parts = {"train": rows[n_test:], "test": rows[:n_test]}
    for split, part in parts.items():
        if kind == "sft":
            data = [{"messages": [{"role": "user", "content": r["prompt"]},
                                  {"role": "assistant", "content": r["revision_response"]}]} for r in part]
        else:
            data = [{"prompt": [{"role": "user", "content": r["prompt"]}],
                     "chosen": [{"role": "assistant", "content": r["revision_response"]}],
                     "rejected": [{"role": "assistant", "content": r["init_response"]}]} for r in part]
        atomic_write_text(out / kind / f"{split}.jsonl", _jsonl(data))
    return {k: len(v) for k, v in parts.items()}


def eval_sets(cfg: PipelineConfig, task: TaskResult) -> dict[str, list[tuple[str, str]]]:
    """Every prompt the eval stage may show a checkpoint, per eval set (for the leakage check)."""
    from cai_bench.tasks import load_task

    sets = {}
    held = load_task(task.eval_task)
    sets[f"{held.id} (held-out)"] = [(p.id, p.prompt) for p in held.prompts]
    for spec in cfg.eval.whole_tasks:
        t = load_task(spec)
        sets[f"{t.id} (evaluated whole)"] = [(p.id, p.prompt) for p in t.prompts]
    for tid in cfg.regression_tasks():
        t = load_task(tid)
        sets[t.id] = [(p.id, p.prompt) for p in t.prompts]
    if cfg.eval.hhh:
        try:
            from cai_bench.tasks.hhh import load_hhh

            items = load_hhh(hhh_source(cfg), limit=cfg.eval.hhh_limit, seed=cfg.seed)
            sets["hhh_alignment"] = [(it.id, it.context) for it in items]
        except UserError as exc:
            log.warning("leakage check without hhh_alignment: %s", exc.message)
    return sets


def gate(cfg: PipelineConfig, out: Path, reports: dict[str, Any]) -> list[str]:
    """The quality gate on the sft and preference sets under this config's thresholds; the
    data stage runs it, and so does a cached data stage (thresholds are checks, not inputs
    of the stage's key: a stricter threshold re-gates what was kept without regenerating)."""
    from cai_bench.generation.quality import check_gate

    warnings = []
    for kind, name in (("sft", "sft data"), ("prefs", "preference data")):
        warnings += check_gate(reports[kind], min_kept_fraction=cfg.data.min_kept_fraction, min_kept=cfg.data.min_kept,
                               allow=cfg.data.allow_low_quality, where=f"{out}: {name}")
    return warnings


def regate_cached(cfg: PipelineConfig, out: Path) -> list[str]:
    """`gate` on a finished data stage's quality.json (absent in folders older than it: nothing to check)."""
    from cai_bench.generation.quality import QualityReport

    path = out / "quality.json"
    if not path.is_file():
        return []
    stored = json.loads(path.read_text(encoding="utf-8"))
    return gate(cfg, out, {k: QualityReport.from_dict(stored[k]) for k in ("sft", "prefs")})


def stage_data(cfg: PipelineConfig, out: Path, task: TaskResult, progress: Any = None) -> DataResult:
    from cai_bench.generation.demonstrations import demonstration_texts, load_demonstrations
    from cai_bench.generation.quality import assess
    from cai_bench.pipeline.leakage import check_leakage, find_overlap

    train_prompts = read_jsonl(Path(task.train_prompts))
    dropped = set(cfg.data.drop_principles)
    kept_prompts_file = None
    if dropped:  # the held-out part keeps every principle; only the training data loses them
        train_prompts = [p for p in train_prompts if p.get("principle_id") not in dropped]
        kept_prompts_file = str(out / "train_prompts.jsonl")
        atomic_write_text(out / "train_prompts.jsonl", _jsonl(train_prompts))
    if cfg.data_source == "bundled":
        from cai_bench.constitutions import load_constitution

        pids = list(load_constitution(task.constitution).principle_ids)
        sft_rows, pref_rows, generator = bundled_rows(cfg, train_prompts, pids)
        generator = f"bundled GPT-4o CAI data ({generator})"
    else:
        sft_rows, pref_rows, generator = generated_rows(cfg, task, out, progress, kept_prompts_file)
    if dropped:  # a generated row names the principle it was critiqued by: none of the dropped ones trains
        sft_rows = [r for r in sft_rows if r.get("principle_id") not in dropped]
        pref_rows = [r for r in pref_rows if r.get("principle_id") not in dropped]
    demos = demonstration_texts(load_demonstrations(cfg.data.demonstrations, cfg.seed)) \
        if cfg.data_source == "generate" else []  # the copy check: no kept row repeats what the generator was shown
    sft_kept, sft_q = assess(sft_rows, demos)
    pref_kept, pref_q = assess(pref_rows, demos)
    quality = {"sft": sft_q.as_dict(), "prefs": pref_q.as_dict(),
               "thresholds": {"min_kept_fraction": cfg.data.min_kept_fraction, "min_kept": cfg.data.min_kept}}
    atomic_write_text(out / "quality.json", json.dumps(quality, indent=2, ensure_ascii=False) + "\n")
    warnings = gate(cfg, out, {"sft": sft_q, "prefs": pref_q})
    train_texts = {"sft": [r["prompt"] for r in sft_kept], "prefs": [r["prompt"] for r in pref_kept]}
    atomic_write_text(out / "train_texts.json", json.dumps(train_texts, ensure_ascii=False) + "\n")
    leak = find_overlap(train_texts, eval_sets(cfg, task))
    atomic_write_text(out / "leakage.json", json.dumps(leak.as_dict(), indent=2, ensure_ascii=False) + "\n")
    warnings += check_leakage(leak, allow=cfg.allow_overlap)
    counts = {"sft": _write_split(out, "sft", sft_kept, seed=cfg.seed, test_size=cfg.data.test_size),
              "prefs": _write_split(out, "prefs", pref_kept, seed=cfg.seed, test_size=cfg.data.test_size)}
    files = {f"{k}/{s}.jsonl": sha256_file(out / k / f"{s}.jsonl") for k in ("sft", "prefs") for s in ("train", "test")}
    info = {"constitution": task.constitution, "source": cfg.data_source, "generator": generator,
            **({"dropped_principles": sorted(dropped)} if dropped else {}), "splits": counts, "sha256": files, "quality": quality}
    atomic_write_text(out / "dataset_info.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return DataResult(source=cfg.data_source, generator=generator, splits=counts, sha256=files,
                      kept={"sft": sft_q.kept, "prefs": pref_q.kept}, total={"sft": sft_q.total, "prefs": pref_q.total},
                      leakage=leak.total, dir=str(out), quality_file=str(out / "quality.json"),
                      leakage_file=str(out / "leakage.json"), train_texts=str(out / "train_texts.json"),
                      warnings=warnings)


# ---------------------------------------------------------------- sft / dpo
def stage_train(stage: str, cfg: PipelineConfig, out: Path, resume: bool, *, task: TaskResult, data: DataResult,
                sft: TrainResult | None = None) -> TrainResult:
    """QLoRA SFT from the student, or DPO from the SFT adapter (`sft` given), then the guards."""
    from cai_bench.training import load_recipe, train

    settings = cfg.sft if stage == "sft" else cfg.dpo
    start = cfg.student if sft is None else sft.output_dir
    data_dir = data.dir
    overrides = [f"model_name_or_path={start}", f"output_dir={out}", f"dataset_mixer={{{data_dir}: 1.0}}",
                 *([] if cfg.train_seed is None else [f"seed={cfg.train_seed}"]), *settings.set]
    recipe = load_recipe(settings.recipe, overrides)
    if (out / "adapter_config.json").is_file() and (out / "cai_bench.json").is_file():
        meta = json.loads((out / "cai_bench.json").read_text(encoding="utf-8"))  # finished before a crash
    else:
        has_ckpt = any(out.glob("checkpoint-*/trainer_state.json"))
        result = train(stage, recipe, resume=resume and has_ckpt, output_dir=out,
                       recipe_source=f"pipeline {stage}: {settings.recipe} + {settings.set}")
        meta = result.metadata
    provenance = {"stage": stage, "start": start, "recipe": settings.recipe, "overrides": overrides,
                  "data": {"dir": str(data_dir), "sha256": data.sha256, "source": data.source},
                  "generator": data.generator, "datasets": meta.get("datasets"),
                  "train_rows": meta.get("train_rows")}
    atomic_write_text(out / "provenance.json", json.dumps(provenance, indent=2, default=str) + "\n")
    hist = meta.get("log_history") or []
    res = TrainResult(output_dir=str(out), train_rows=meta.get("train_rows"),
                      final_loss=next((e["loss"] for e in reversed(hist) if "loss" in e), None),
                      steps=(meta.get("metrics") or {}).get("global_step"), meta_file=str(out / "cai_bench.json"),
                      provenance_file=str(out / "provenance.json"))
    if stage == "dpo":
        from cai_bench.reports.guards import max_abs_margin

        res.max_abs_margin = max_abs_margin(hist)
    res.guards = post_training_guards(stage, cfg, out, task, hist, sft)
    res.guard_file = str(out / "guard.json")
    res.warnings = [f"{g['name']}: {'; '.join(g['reasons'])} ({GUARD_ADVICE[g['name'].split()[0]]})"
                    for g in res.guards if g["fired"]]
    return res


GUARD_PROMPTS = 8  # held-out prompts answered right after each training stage
GUARD_ADVICE = {"collapse": "lower the learning rate or the steps of that stage; the report checks every eval answer",
                "no-op": "raise dpo learning_rate or beta; the report checks every eval answer"}


def guard_answers(cfg: PipelineConfig, task: TaskResult, spec: str, engine: str = "hf") -> list[str]:
    """Greedy answers of one checkpoint to the first GUARD_PROMPTS held-out prompts, with
    the eval stage's decoding settings (on vLLM: on the server `serving` keeps)."""
    from cai_bench.models import open_checkpoint, resolve_checkpoint
    from cai_bench.models.chat import ChatOptions, GenParams
    from cai_bench.tasks import load_task

    prompts = load_task(task.eval_task).prompts[:GUARD_PROMPTS]
    if engine == "vllm":
        from cai_bench.models.chat.vllm_chat import VllmChat, local_options
        from cai_bench.models.vllm_server import kept_server

        ckpt = resolve_checkpoint(spec)
        server = kept_server(ckpt.model, [ckpt.adapter] if ckpt.adapter else [], eval_vllm_settings(cfg))
        if server is None:
            raise RuntimeError(f"no vLLM server kept for {spec}")  # serving() starts it; a bug otherwise
        model = VllmChat.on_server(server, ckpt, local_options(ChatOptions(batch_size=cfg.eval.batch_size)))
    else:
        model = open_checkpoint(spec, ChatOptions(batch_size=cfg.eval.batch_size))
    try:
        done = model.chat([[{"role": "user", "content": p.prompt}] for p in prompts],
                          GenParams(max_new_tokens=cfg.eval.max_new_tokens, temperature=0.0, seed=cfg.seed))
    finally:
        model.close()
    return [c.text for c in done]


def post_training_guards(stage: str, cfg: PipelineConfig, out: Path, task: TaskResult, hist: list[dict],
                         sft: TrainResult | None) -> list[dict]:
    """Collapse (and, after DPO, no-op) checks on a few held-out answers, right after training,
    so a collapsed SFT model is flagged before DPO and evaluation spend their time on it.
    Answers are kept in <stage>/guard.json; DPO reuses the base and SFT answers SFT wrote."""
    from cai_bench.reports.guards import collapse_guard, noop_dpo_guard

    answers: dict[str, list[str]] = {}
    if sft is not None and sft.guard_file and Path(sft.guard_file).is_file():
        answers.update(json.loads(Path(sft.guard_file).read_text(encoding="utf-8"))["answers"])
    specs = {"base": cfg.student, "sft": sft.output_dir if sft is not None else str(out), "dpo": str(out)}
    todo = [role for role in ("base", "sft", "dpo") if role not in answers and (role != "dpo" or stage == "dpo")]
    # auto: transformers for these few prompts unless vLLM is asked for (a server start costs more than they do)
    engine = "vllm" if todo and cfg.eval.engine == "vllm" else "hf"
    if engine == "vllm":
        eval_engine(cfg)  # vllm asked for but not installed: the user error, before a server is tried
    with serving(cfg, engine, [specs[r] for r in todo]):
        for role in todo:
            answers[role] = guard_answers(cfg, task, specs[role], engine)
    checks = [collapse_guard(stage, answers["base"], answers[stage])]
    if stage == "dpo":
        checks.append(noop_dpo_guard(answers["sft"], answers["dpo"], hist))
    where = f" (right after training, {len(answers['base'])} held-out prompts)"
    guards = [dict(g.as_dict(), name=g.name + where) for g in checks]
    atomic_write_text(out / "guard.json", json.dumps({"answers": answers, "guards": guards},
                                                     indent=2, ensure_ascii=False) + "\n")
    return guards


# ---------------------------------------------------------------- eval
HHH_CHUNK = 128  # HHH items per committed unit of work in the eval stage
def recheck_leakage(cfg: PipelineConfig, out: Path, task: TaskResult, data: DataResult) -> Path:
    """The eval sets may have changed since the data stage checked them (eval settings are not
    part of the data key): check the training prompts against the sets evaluated now, before
    any answer is generated. Writes <eval>/leakage.json; stops on overlap unless --allow-overlap."""
    from cai_bench.pipeline.leakage import check_leakage, find_overlap

    texts = json.loads(Path(data.train_texts).read_text(encoding="utf-8"))
    leak = find_overlap(texts, eval_sets(cfg, task))
    out.mkdir(parents=True, exist_ok=True)
    dest = out / "leakage.json"
    atomic_write_text(dest, json.dumps(leak.as_dict(), indent=2, ensure_ascii=False) + "\n")
    for w in check_leakage(leak, allow=cfg.allow_overlap):
        log.warning("%s", w)
    return dest


def store_url(cfg: PipelineConfig, out: Path) -> str:
    """eval.store (a path or URL, shared by several pipelines if they like), else <eval>/results.sqlite."""
    from cai_bench.results import normalize_url

    return normalize_url(cfg.eval.store, str(out))


def stage_eval(cfg: PipelineConfig, out: Path, console: Any, *, task: TaskResult, data: DataResult,
               sft: TrainResult, dpo: TrainResult) -> EvalResult:
    """`cai-bench run` of base, SFT and DPO into the store: the whole held-out part, the
    regression tasks (`eval.limit` prompts each) and HHH (`eval.hhh_limit` items, scored by
    log-likelihood; its own batch size: its batches hold seq x vocab logits)."""
    from cai_bench.harness.config import GenerationSettings, RunConfig
    from cai_bench.harness.runner import run
    from cai_bench.models import resolve_checkpoint
    from cai_bench.tasks import load_task

    leakage = recheck_leakage(cfg, out, task, data)
    ckpts = {"base": cfg.student, "sft": sft.output_dir, "dpo": dpo.output_dir}
    fps = {role: resolve_checkpoint(spec).fingerprint for role, spec in ckpts.items()}
    url = store_url(cfg, out)
    # other variants' held-out parts (whole_tasks): sizes not known here, so the planned work is unknown
    engine = eval_engine(cfg, console, held_out=None if cfg.eval.whole_tasks else task.eval).engine
    gen = GenerationSettings(max_new_tokens=cfg.eval.max_new_tokens, batch_size=cfg.eval.batch_size,
                             engine=engine, vllm=eval_vllm_settings(cfg))
    common = dict(checkpoints=list(ckpts.values()), scorers=cfg.eval.scorers, out=out, store=url, seed=cfg.seed,
                  n_boot=cfg.eval.n_boot, generation=gen, report=False, download_models=False)
    whole = [task.eval_task, *cfg.eval.whole_tasks]  # other variants' held-out parts are whole too
    others = cfg.regression_tasks()
    with serving(cfg, engine, list(ckpts.values())):  # vLLM: one server start for both runs
        generated = run(RunConfig(tasks=whole, **common), console=console).generated
        if others:
            generated += run(RunConfig(tasks=others, limit=cfg.eval.limit, **common), console=console).generated
    tasks = [task.eval_task_id, *(load_task(t).id for t in [*cfg.eval.whole_tasks, *others])]
    if cfg.eval.hhh:
        # log-likelihood scoring, always in-process (transformers);
        # one lm-eval call per 128 items (32-item chunks pay lm-eval's per-call set-up four times as often)
        hhh = dict(common, scorers=[], generation=GenerationSettings(batch_size=cfg.eval.hhh_batch_size,
                                                                     chunk_size=HHH_CHUNK))
        run(RunConfig(tasks=list(cfg.eval.hhh_views), limit=cfg.eval.hhh_limit, hhh_path=hhh_source(cfg), **hhh),
            console=console)
        tasks += list(cfg.eval.hhh_views)
    return EvalResult(store=url, fingerprints=fps, checkpoints=ckpts, tasks=tasks, generated=generated,
                      leakage_file=str(leakage), engine=engine)


# ---------------------------------------------------------------- report
def _read_json(path: str | None) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8")) if path and Path(path).is_file() else None


def metric_meanings(cfg: PipelineConfig) -> dict[str, str]:
    """What each metric of the eval measures, in the words its scorer declares (the loop section
    shows them beside the verdicts: a similarity gain is not a behaviour gain)."""
    from cai_bench.harness.scorers import scorer_class

    out: dict[str, str] = {}
    for sid in cfg.eval_scorer_ids():
        try:
            metrics = scorer_class(sid).metrics
        except (UserError, ImportError):  # an unknown or uninstalled scorer failed the eval already; no words
            continue
        out.update({f"{sid}.{m.name}": m.description for m in metrics if m.description})
    if cfg.eval.hhh:
        from cai_bench.harness.loglik import METRICS, SCORER_ID

        out.update({f"{SCORER_ID}.{m.name}": m.description for m in METRICS})
    return out


def loop_record(cfg: PipelineConfig, stages: dict[str, dict[str, Any]], *, task: TaskResult, data: DataResult,
                sft: TrainResult, dpo: TrainResult, ev: EvalResult) -> Any:
    """What `cai-bench report` needs to rebuild the loop section from the store alone."""
    from cai_bench.results.loops import LoopRecord, loop_id_for

    out = Path(cfg.out).expanduser().resolve()
    split = _read_json(task.split_file) or {}
    return LoopRecord(
        loop_id=loop_id_for(str(out)), title=f"{task.task} ({out.name})", fingerprints=ev.fingerprints,
        specs=ev.checkpoints, eval_task=task.eval_task_id, tasks=ev.tasks, seed=cfg.seed, n_boot=cfg.eval.n_boot,
        early_guards=[*sft.guards, *dpo.guards],
        log_history={s: (_read_json(r.meta_file) or {}).get("log_history") or [] for s, r in (("sft", sft),
                                                                                             ("dpo", dpo))},
        quality=_read_json(data.quality_file), leakage=_read_json(ev.leakage_file) or _read_json(data.leakage_file),
        split={k: v for k, v in split.items() if k in ("task", "seed", "eval_fraction", "per_principle")},
        provenance={s: _read_json(r.provenance_file) for s, r in (("sft", sft), ("dpo", dpo))},
        config=json.loads(cfg.model_dump_json()), stages=stages, measures=metric_meanings(cfg))


def stage_report(cfg: PipelineConfig, out: Path, stages: dict[str, dict[str, Any]], *, task: TaskResult,
                 data: DataResult, sft: TrainResult, dpo: TrainResult, eval: EvalResult) -> ReportResult:
    """Record the loop in the store, then write the store's report (the `reports` package)
    into this folder: exactly what `cai-bench report --store STORE` writes."""
    from cai_bench.reports.writer import DEFAULT_FORMATS, prepare, write_files
    from cai_bench.results import Store

    record = loop_record(cfg, stages, task=task, data=data, sft=sft, dpo=dpo, ev=eval)
    store = Store(eval.store)
    try:
        store.put_loop(record)
    finally:
        store.close()
    from cai_bench.harness.declarations import late_declarations

    report = prepare(eval.store, formats=DEFAULT_FORMATS, seed=cfg.seed, n_boot=cfg.eval.n_boot,
                     late=late_declarations(eval.store))
    dest = write_files(report, out.parent, DEFAULT_FORMATS, seed=cfg.seed, n_boot=cfg.eval.n_boot,
                       combined_csv=False)
    mine = next(lr for lr in report.loops if lr.record.loop_id == record.loop_id)
    return ReportResult(report=str(dest), loop_id=record.loop_id, guard_warnings=mine.warnings)
