"""Pre-flight: before any training, what each eval task can be judged on, whether the
HHH data is here, and how long each stage should take.

A culture under test whose held-out part no metric can judge (no reference answers
for similarity, no refusal analysis, no judge) would be trained for nothing: the
pipeline stops with one line unless `--allow-no-verdict`. `--dry-run` prints the
whole plan and writes nothing.

Estimates scale the stage times recorded with the profile (measured on this
project's 2-core CPU; `PROFILE_TIMES`) by this run's sizes; a previous run in the
same output folder (`timings.json`) is used instead for the stages it timed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cai_bench.errors import UserError
from cai_bench.pipeline.config import PipelineConfig

# seconds per stage of the shipped cpu-small pipeline on cai_south_africa, measured on this project's 2-core
# CPU with nothing else running (2026-12-07, the South African variant of the two-culture experiment from a fresh
# clone): 64 train prompts, 100 HHH items, 3 checkpoints. Its eval answered 96 prompts per checkpoint (32 held-out,
# the other culture's 32 held-out, 2 x 16 regression) in ~155 s and HHH in ~145 s (its log), scaled here to the
# profile's 64 eval prompts; each part scales with its size. A CPU shared with other work takes longer.
PROFILE_TIMES: dict[str, dict[str, Any]] = {
    "cpu-small": {"sizes": {"train": 64, "eval_prompts": 64, "hhh": 100},
                  "seconds": {"task": 0.1, "data": 0.3, "sft": 86.0, "dpo": 159.0, "eval_generate": 110.0,
                              "eval_hhh": 150.0, "report": 2.0}},
}
GENERATE_PER_PROMPT = 13.0  # s per train prompt, data.source generate, SmolLM2: 14 min for 64 train prompts (user report)


@dataclass
class TaskCheck:
    task: str
    role: str  # culture under test | regression | HHH
    prompts: int
    judged_by: list[str] = field(default_factory=list)  # what can give it a verdict offline
    problems: list[str] = field(default_factory=list)

    @property
    def judged(self) -> bool:
        return bool(self.judged_by)


@dataclass
class Preflight:
    tasks: list[TaskCheck]
    estimates: dict[str, float]  # stage -> seconds
    source: str  # where the estimates come from

    def lines(self) -> list[str]:
        out = ["pre-flight:"]
        for t in self.tasks:
            verdict = ", ".join(t.judged_by) if t.judged else "NO VERDICT POSSIBLE"
            out.append(f"  {t.role} {t.task} ({t.prompts} prompts): {verdict}"
                       + (f" [{'; '.join(t.problems)}]" if t.problems else ""))
        total = sum(self.estimates.values())
        out.append(f"  estimated stage times ({self.source}): "
                   + ", ".join(f"{k} ~{v:.0f}s" for k, v in self.estimates.items()) + f"; total ~{total / 60:.0f} min")
        return out


def _check_task(task: Any, role: str, scorer_ids: list[str]) -> TaskCheck:
    from cai_bench.harness.scorers import scorer_class

    check = TaskCheck(task.id, role, len(task.prompts))
    with_ref = sum(1 for p in task.prompts if p.reference)
    for sid in scorer_ids:
        try:
            cls = scorer_class(sid)
        except UserError as exc:
            check.problems.append(f"{sid}: {exc.message}")
            continue
        if getattr(cls, "needs_reference", False):
            if with_ref:
                check.judged_by.append(f"{sid} ({with_ref} of {len(task.prompts)} prompts have a reference)")
            else:
                check.problems.append(f"{sid}: no prompt has a reference answer")
        else:
            check.judged_by.append(sid)
    if "refusal" in task.analyses:
        kinds = {p.expect for p in task.prompts}
        check.judged_by.append("refusal rule (" + ", ".join(f"{sum(p.expect == k for p in task.prompts)} expect {k}"
                                                            for k in sorted(k for k in kinds if k)) + ")")
    return check


def _estimates(cfg: PipelineConfig, train: int, eval_prompts: int, hhh: int) -> tuple[dict[str, float], str]:
    previous = Path(cfg.out).expanduser() / "timings.json"
    last: dict[str, float] = {}
    if previous.is_file():
        try:
            last = {k: float(v) for k, v in json.loads(previous.read_text()).items()}
        except (ValueError, AttributeError):
            pass
    rec = PROFILE_TIMES.get(cfg.profile)
    if rec is None:
        return (last, f"last run in {previous}") if last else ({}, f"no stage times recorded for profile {cfg.profile}")
    sz, sec = rec["sizes"], rec["seconds"]
    data = sec["data"] if cfg.data_source == "bundled" else GENERATE_PER_PROMPT * train
    est = {"task": sec["task"], "data": data, "sft": sec["sft"] * train / sz["train"],
           "dpo": sec["dpo"] * train / sz["train"],
           "eval": sec["eval_generate"] * eval_prompts / sz["eval_prompts"] + sec["eval_hhh"] * hhh / sz["hhh"],
           "report": sec["report"]}
    scaled = f"profile {cfg.profile} as measured on a 2-core CPU, scaled to this run's sizes"
    if last:  # a run that stopped part-way (or an experiment's task stage run first) timed only some stages
        rest = [k for k in est if k not in last]
        est.update({k: v for k, v in last.items() if k in est})
        return est, f"last run in {previous}" + (f"; {scaled} for {', '.join(rest)}" if rest else "")
    return est, scaled


def preflight(cfg: PipelineConfig) -> Preflight:
    """The checks, without loading a model or writing anything (synthesised prompts count as unknown)."""
    from cai_bench.pipeline.stages import hhh_source, load_source_task, stratified_split
    from cai_bench.tasks import load_task

    scorers = cfg.eval_scorer_ids()
    checks: list[TaskCheck] = []
    train_n = cfg.split.max_train or 0
    eval_prompts = 0
    if cfg.synthesize is None:
        task, _ = load_source_task(cfg)
        train, held = stratified_split(task.prompts, fraction=cfg.split.eval_fraction, seed=cfg.split.seed,
                                       max_train=cfg.split.max_train, max_eval=cfg.split.max_eval)
        train_n, eval_prompts = len(train), len(held)
        checks.append(_check_task(task.model_copy(update={"prompts": held}), "culture under test", scorers))
    from cai_bench.harness.sample import sample_task

    for spec in cfg.eval.whole_tasks:
        if Path(spec).exists() or "/" not in spec:  # an experiment's other held-out parts exist once its task stages ran
            t = load_task(spec)
            eval_prompts += len(t.prompts)
            checks.append(_check_task(t, "evaluated whole", scorers))
    for tid in cfg.regression_tasks():
        t = load_task(tid)
        chosen = set(sample_task(t, cfg.eval.limit, seed=cfg.seed).prompt_ids)  # the prompts the eval's run draws
        part = [p for p in t.prompts if p.id in chosen]
        eval_prompts += len(part)
        checks.append(_check_task(t.model_copy(update={"prompts": part}), "regression", scorers))
    hhh_n = 0
    if cfg.eval.hhh:
        from cai_bench.tasks.hhh import hhh_path

        for view in cfg.eval.hhh_views:
            check = TaskCheck(view, "HHH", cfg.eval.hhh_limit or 0)
            try:
                hhh_path(hhh_source(cfg), download=False)
                check.judged_by.append("log-likelihood accuracy")
                hhh_n = cfg.eval.hhh_limit or 438
            except UserError as exc:
                check.problems.append(exc.message)
            checks.append(check)
    est, source = _estimates(cfg, train_n or 64, eval_prompts, hhh_n * len(cfg.eval.hhh_views))
    return Preflight(checks, est, source)


def require_verdicts(pre: Preflight, *, allow: bool) -> list[str]:
    """Stop (one line) when the HHH data is missing, or when the culture under test could get no
    verdict unless `allow`; warnings otherwise."""
    blind = [t for t in pre.tasks if not t.judged]
    missing_hhh = [t for t in blind if t.role == "HHH"]
    if missing_hhh:  # the eval would stop there, after training: say it now
        raise UserError(f"eval.hhh: {missing_hhh[0].problems[0]} (or --set eval.hhh=false to evaluate without HHH)")
    warnings = [f"{t.role} {t.task}: no verdict possible ({'; '.join(t.problems) or 'no metric applies'})"
                for t in blind]
    if any(t.role == "culture under test" for t in blind) and not allow:
        raise UserError(warnings[0] + ". Fix: add reference answers, add a task.yaml `analyses: [refusal]` with "
                        "`expect` per prompt, or a judge scorer (--set eval.scorers='[similarity, judge]'); or "
                        "--allow-no-verdict to train anyway")
    return warnings
