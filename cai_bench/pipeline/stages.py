"""The six stages of the CAI loop. Each takes the config and the stage folders,
does its work with the existing packages (tasks, generation, training, harness),
and returns a small JSON-able summary that the runner stores in `stage.json`.

    task  -> <out>/task/   split.json, eval_task/ (held-out part as a task folder), train_prompts.jsonl
    data  -> <out>/data/   sft/, prefs/ (generate format), quality.json, leakage.json
    sft   -> <out>/sft/    adapter + cai_bench.json (+ provenance.json)
    dpo   -> <out>/dpo/    adapter + cai_bench.json (+ provenance.json)
    eval  -> <out>/eval/   results store (cai-bench run), hhh/<fingerprint>-<items>.jsonl
    report-> <out>/report/ pipeline.md, pipeline.json, samples.html (+ the usual run report)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from cai_bench.errors import UserError
from cai_bench.hashing import sha256_file
from cai_bench.paths import atomic_write_text
from cai_bench.pipeline.config import BUNDLED_DATA, PipelineConfig

log = logging.getLogger("cai_bench.pipeline")
ROLES = ("base", "sft", "dpo")


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
    task = Task(id=f"{constitution.id}_prompts"[:60], constitution=constitution.id, culture=constitution.culture,
                description=f"prompts from {cfg.prompts}", prompts=prompts)
    return task, constitution


def stratified_split(prompts: list, *, fraction: float, seed: int, max_train: int | None,
                     max_eval: int | None) -> tuple[list, list]:
    """Per principle: shuffle by seed, hold out round(n * fraction) (at least one where
    a principle has two or more prompts); caps then take prompts round-robin over
    principles so every principle stays represented."""
    groups: dict[str, list] = defaultdict(list)
    for p in prompts:
        groups[p.principle_id or "_none"].append(p)
    train_g: dict[str, list] = {}
    eval_g: dict[str, list] = {}
    for key in sorted(groups):
        g = sorted(groups[key], key=lambda p: p.id)
        random.Random(f"{seed}:{key}").shuffle(g)
        k = round(len(g) * fraction)
        if len(g) >= 2:
            k = min(max(k, 1), len(g) - 1)
        eval_g[key], train_g[key] = g[:k], g[k:]

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


def stage_task(cfg: PipelineConfig, out: Path) -> dict:
    from cai_bench.tasks import write_task_folder

    task, constitution = load_source_task(cfg, out)
    train, held = stratified_split(task.prompts, fraction=cfg.split.eval_fraction, seed=cfg.split.seed,
                                   max_train=cfg.split.max_train, max_eval=cfg.split.max_eval)
    if not train or not held:
        raise UserError(f"task {task.id!r}: {len(task.prompts)} prompts are too few to split into train and eval")
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
    split = {"task": task.id, "constitution": constitution.id, "culture": task.culture, "seed": cfg.split.seed,
             "eval_fraction": cfg.split.eval_fraction, "train": [p.id for p in train], "eval": [p.id for p in held],
             "per_principle": {k: {"train": v[0], "eval": v[1]} for k, v in sorted(per.items())}}
    atomic_write_text(out / "split.json", json.dumps(split, indent=2) + "\n")
    constitution_ref = str(constitution.path) if ctext is not None else constitution.id
    return {"task": task.id, "constitution": constitution_ref, "culture": task.culture, "eval_task": str(folder),
            "eval_task_id": eval_id, "train": len(train), "eval": len(held), "principles": len(per)}


# ---------------------------------------------------------------- data
def _shared_data_dirs(cfg: PipelineConfig) -> list[Path]:
    cands = [cfg.data.bundled_dir, os.environ.get("CAI_BENCH_SHARED_DATA"), "../shared/data",
             str(Path(__file__).resolve().parents[2].parent / "shared" / "data")]
    return [Path(c).expanduser() for c in cands if c]


def bundled_root(cfg: PipelineConfig) -> Path:
    for c in _shared_data_dirs(cfg):
        if (c / "bluedot_cai").is_dir():
            return c / "bluedot_cai"
    raise UserError("data.source bundled: the bluedot_cai data folder was not found. Fix: set data.bundled_dir "
                    "(or $CAI_BENCH_SHARED_DATA) to the folder holding bluedot_cai/")


def hhh_source(cfg: PipelineConfig) -> str | None:
    """eval.hhh_path, else $CAI_BENCH_HHH_PATH, else the copy in the shared data folder the
    bundled CAI data comes from (so an offline built-in run finds it), else the loader's cache/download."""
    if cfg.eval.hhh_path or os.environ.get("CAI_BENCH_HHH_PATH"):
        return cfg.eval.hhh_path
    for c in _shared_data_dirs(cfg):
        f = c / "cai_paper_anthropic" / "evals" / "438HHHEvaluations.jsonl"
        if f.is_file():
            return str(f)
    return None


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


def generated_rows(cfg: PipelineConfig, task_info: dict, out: Path, progress: Any) -> tuple[list[dict], list[dict], str]:
    from cai_bench.generation.pipeline import GenerateConfig, generate
    from cai_bench.generation.store import read_records

    gen_out = out / "generated"
    gcfg = GenerateConfig(constitution=task_info["constitution"], prompts=str(out.parent / "task" / "train_prompts.jsonl"),
                          model=cfg.generator, out=gen_out, selection=cfg.data.selection, seed=cfg.seed,
                          max_new_tokens=cfg.data.max_new_tokens, batch_size=cfg.data.batch_size, test_size=0.0,
                          keep_truncated=False)
    bar = progress.add_task(f"generate CAI data with {cfg.generator}", total=task_info["train"]) if progress else None
    generate(gcfg, on_progress=(lambda done, total: progress.update(bar, completed=done, total=total))
             if progress else None)
    rows = []
    for r in read_records(gen_out / "records.jsonl"):
        rows.append({"id": r.id, "prompt": r.init_prompt, "init_response": r.init_response,
                     "critic_response": r.critic_response, "revision_response": r.revision_response,
                     "principle_id": r.principle_id, "finish_reasons": r.finish_reasons, "drop_reason": r.drop_reason})
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


def eval_sets(cfg: PipelineConfig, task_info: dict) -> dict[str, list[tuple[str, str]]]:
    """Every prompt the eval stage may show a checkpoint, per eval set (for the leakage check)."""
    from cai_bench.tasks import load_task

    sets = {}
    held = load_task(task_info["eval_task"])
    sets[f"{held.id} (held-out)"] = [(p.id, p.prompt) for p in held.prompts]
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


def stage_data(cfg: PipelineConfig, out: Path, task_info: dict, progress: Any = None) -> dict:
    from cai_bench.generation.quality import assess, check_gate
    from cai_bench.pipeline.leakage import check_leakage, find_overlap

    train_prompts = read_jsonl(out.parent / "task" / "train_prompts.jsonl")
    if cfg.data_source == "bundled":
        from cai_bench.constitutions import load_constitution

        pids = list(load_constitution(task_info["constitution"]).principle_ids)
        sft_rows, pref_rows, generator = bundled_rows(cfg, train_prompts, pids)
        generator = f"bundled GPT-4o CAI data ({generator})"
    else:
        sft_rows, pref_rows, generator = generated_rows(cfg, task_info, out, progress)
    sft_kept, sft_q = assess(sft_rows)
    pref_kept, pref_q = assess(pref_rows)
    quality = {"sft": sft_q.as_dict(), "prefs": pref_q.as_dict(),
               "thresholds": {"min_kept_fraction": cfg.data.min_kept_fraction, "min_kept": cfg.data.min_kept}}
    atomic_write_text(out / "quality.json", json.dumps(quality, indent=2, ensure_ascii=False) + "\n")
    warnings = []
    for name, q in (("sft data", sft_q), ("preference data", pref_q)):
        warnings += check_gate(q, min_kept_fraction=cfg.data.min_kept_fraction, min_kept=cfg.data.min_kept,
                               allow=cfg.data.allow_low_quality, where=f"{out}: {name}")
    train_texts = {"sft": [r["prompt"] for r in sft_kept], "prefs": [r["prompt"] for r in pref_kept]}
    atomic_write_text(out / "train_texts.json", json.dumps(train_texts, ensure_ascii=False) + "\n")
    leak = find_overlap(train_texts, eval_sets(cfg, task_info))
    atomic_write_text(out / "leakage.json", json.dumps(leak.as_dict(), indent=2, ensure_ascii=False) + "\n")
    warnings += check_leakage(leak, allow=cfg.allow_overlap)
    counts = {"sft": _write_split(out, "sft", sft_kept, seed=cfg.seed, test_size=cfg.data.test_size),
              "prefs": _write_split(out, "prefs", pref_kept, seed=cfg.seed, test_size=cfg.data.test_size)}
    files = {f"{k}/{s}.jsonl": sha256_file(out / k / f"{s}.jsonl") for k in ("sft", "prefs") for s in ("train", "test")}
    info = {"constitution": task_info["constitution"], "source": cfg.data_source, "generator": generator,
            "splits": counts, "sha256": files, "quality": quality}
    atomic_write_text(out / "dataset_info.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return {"source": cfg.data_source, "generator": generator, "splits": counts, "sha256": files,
            "kept": {"sft": sft_q.kept, "prefs": pref_q.kept}, "total": {"sft": sft_q.total, "prefs": pref_q.total},
            "leakage": leak.total, "warnings": warnings}


# ---------------------------------------------------------------- sft / dpo
def stage_train(stage: str, cfg: PipelineConfig, out: Path, data_dir: Path, start: str, data_info: dict,
                resume: bool, task_info: dict | None = None) -> dict:
    from cai_bench.training import load_recipe, train

    settings = cfg.sft if stage == "sft" else cfg.dpo
    overrides = [f"model_name_or_path={start}", f"output_dir={out}", f"dataset_mixer={{{data_dir}: 1.0}}",
                 *settings.set]
    recipe = load_recipe(settings.recipe, overrides)
    if (out / "adapter_config.json").is_file() and (out / "cai_bench.json").is_file():
        meta = json.loads((out / "cai_bench.json").read_text(encoding="utf-8"))  # finished before a crash
    else:
        has_ckpt = any(out.glob("checkpoint-*/trainer_state.json"))
        result = train(stage, recipe, resume=resume and has_ckpt, output_dir=out,
                       recipe_source=f"pipeline {stage}: {settings.recipe} + {settings.set}")
        meta = result.metadata
    provenance = {"stage": stage, "start": start, "recipe": settings.recipe, "overrides": overrides,
                  "data": {"dir": str(data_dir), "sha256": data_info["sha256"], "source": data_info["source"]},
                  "generator": data_info["generator"], "datasets": meta.get("datasets"),
                  "train_rows": meta.get("train_rows")}
    atomic_write_text(out / "provenance.json", json.dumps(provenance, indent=2, default=str) + "\n")
    hist = meta.get("log_history") or []
    info = {"output_dir": str(out), "train_rows": meta.get("train_rows"),
            "final_loss": next((e["loss"] for e in reversed(hist) if "loss" in e), None),
            "steps": (meta.get("metrics") or {}).get("global_step")}
    if stage == "dpo":
        from cai_bench.reports.guards import max_abs_margin

        info["max_abs_margin"] = max_abs_margin(hist)
    if task_info is not None:
        guards = post_training_guards(stage, cfg, out, task_info, hist)
        info["guards"] = guards
        info["warnings"] = [f"{g['name']}: {'; '.join(g['reasons'])} ({GUARD_ADVICE[g['name'].split()[0]]})"
                            for g in guards if g["fired"]]
    return info


GUARD_PROMPTS = 8  # held-out prompts answered right after each training stage
GUARD_ADVICE = {"collapse": "lower the learning rate or the steps of that stage; the report checks every eval answer",
                "no-op": "raise dpo learning_rate or beta; the report checks every eval answer"}


def guard_answers(cfg: PipelineConfig, task_info: dict, spec: str) -> list[str]:
    """Greedy answers of one checkpoint to the first GUARD_PROMPTS held-out prompts, with
    the eval stage's decoding settings."""
    from cai_bench.models.chat import ChatOptions, GenParams, open_checkpoint
    from cai_bench.tasks import load_task

    prompts = load_task(task_info["eval_task"]).prompts[:GUARD_PROMPTS]
    model = open_checkpoint(spec, ChatOptions(batch_size=cfg.eval.batch_size))
    try:
        done = model.chat([[{"role": "user", "content": p.prompt}] for p in prompts],
                          GenParams(max_new_tokens=cfg.eval.max_new_tokens, temperature=0.0, seed=cfg.seed))
    finally:
        model.close()
    return [c.text for c in done]


def post_training_guards(stage: str, cfg: PipelineConfig, out: Path, task_info: dict, hist: list[dict]) -> list[dict]:
    """Collapse (and, after DPO, no-op) checks on a few held-out answers, right after training,
    so a collapsed SFT model is flagged before DPO and evaluation spend their time on it.
    Answers are kept in <stage>/guard.json; DPO reuses the base and SFT answers SFT wrote."""
    from cai_bench.reports.guards import collapse_guard, noop_dpo_guard

    answers: dict[str, list[str]] = {}
    sft_file = out.parent / "sft" / "guard.json"
    if stage == "dpo" and sft_file.is_file():
        answers.update(json.loads(sft_file.read_text(encoding="utf-8"))["answers"])
    for role, spec in (("base", cfg.student), ("sft", str(out.parent / "sft")), ("dpo", str(out))):
        if role not in answers and (role != "dpo" or stage == "dpo"):
            answers[role] = guard_answers(cfg, task_info, spec)
    checks = [collapse_guard(stage, answers["base"], answers[stage])]
    if stage == "dpo":
        checks.append(noop_dpo_guard(answers["sft"], answers["dpo"], hist))
    where = f" (right after training, {len(answers['base'])} held-out prompts)"
    guards = [dict(g.as_dict(), name=g.name + where) for g in checks]
    atomic_write_text(out / "guard.json", json.dumps({"answers": answers, "guards": guards},
                                                     indent=2, ensure_ascii=False) + "\n")
    return guards


# ---------------------------------------------------------------- eval
def checkpoints(cfg: PipelineConfig, out: Path) -> dict[str, str]:
    return {"base": cfg.student, "sft": str(out / "sft"), "dpo": str(out / "dpo")}


def recheck_leakage(cfg: PipelineConfig, out: Path, task_info: dict) -> None:
    """The eval sets may have changed since the data stage checked them (eval settings are not
    part of the data key): check the training prompts against the sets evaluated now, before
    any answer is generated. Writes <eval>/leakage.json; stops on overlap unless --allow-overlap."""
    from cai_bench.pipeline.leakage import check_leakage, find_overlap

    texts_file = out.parent / "data" / "train_texts.json"
    if not texts_file.is_file():  # a data stage from before train_texts.json: rebuild from its splits
        texts = {"sft": [], "prefs": []}
        for kind in texts:
            for split in ("train", "test"):
                f = out.parent / "data" / kind / f"{split}.jsonl"
                if f.is_file():
                    texts[kind] += [(r["messages"][0] if kind == "sft" else r["prompt"][0])["content"]
                                    for r in read_jsonl(f)]
    else:
        texts = json.loads(texts_file.read_text(encoding="utf-8"))
    leak = find_overlap(texts, eval_sets(cfg, task_info))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "leakage.json", json.dumps(leak.as_dict(), indent=2, ensure_ascii=False) + "\n")
    for w in check_leakage(leak, allow=cfg.allow_overlap):
        log.warning("%s", w)


def stage_eval(cfg: PipelineConfig, out: Path, task_info: dict, ckpts: dict[str, str], console: Any) -> dict:
    from cai_bench.harness.config import GenerationSettings, RunConfig
    from cai_bench.harness.runner import run
    from cai_bench.models import resolve_checkpoint

    recheck_leakage(cfg, out, task_info)
    fps = {role: resolve_checkpoint(spec).fingerprint for role, spec in ckpts.items()}
    gen = GenerationSettings(max_new_tokens=cfg.eval.max_new_tokens, batch_size=cfg.eval.batch_size)
    common = dict(checkpoints=list(ckpts.values()), scorers=cfg.eval.scorers, out=out, seed=cfg.seed,
                  generation=gen, report=False, download_models=False)
    held = run(RunConfig(tasks=[task_info["eval_task"]], **common), console=console)
    others = cfg.regression_tasks()
    reg = run(RunConfig(tasks=others, limit=cfg.eval.limit, **common), console=console) if others else None
    hhh_files = eval_hhh(cfg, out, ckpts) if cfg.eval.hhh else {}
    return {"store": held.store_url, "fingerprints": fps, "checkpoints": ckpts, "tasks": [task_info["eval_task_id"], *others],
            "generated": held.generated + (reg.generated if reg else 0), "hhh": hhh_files}


def eval_hhh(cfg: PipelineConfig, out: Path, ckpts: dict[str, str]) -> dict[str, str]:
    """HHH per checkpoint, one file per (fingerprint, item set): a finished one is not redone."""
    from cai_bench.harness.hhh import build_lm, evaluate_hhh
    from cai_bench.models import resolve_checkpoint
    from cai_bench.tasks.hhh import load_hhh

    items = load_hhh(hhh_source(cfg), limit=cfg.eval.hhh_limit, seed=cfg.seed)
    views = sorted(set(cfg.eval.hhh_views))
    items_key = hashlib.sha256(json.dumps([it.id for it in items] + [it.prompt for it in items] + views)
                               .encode()).hexdigest()[:12]
    files = {}
    for role, spec in ckpts.items():
        ck = resolve_checkpoint(spec)
        dest = out / "hhh" / f"{ck.fingerprint[:24]}-{items_key}.jsonl"
        files[role] = str(dest)
        if dest.is_file():
            continue
        lm = build_lm(ck, batch_size=cfg.eval.hhh_batch_size)
        rows = evaluate_hhh(lm, items, views=views, batch_size=cfg.eval.hhh_batch_size, seed=cfg.seed)
        del lm
        atomic_write_text(dest, _jsonl(rows))
    return files
