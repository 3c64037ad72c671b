"""Which stages each variant computes, shares with an earlier variant, or has cached.

A stage's cache key is the hash of everything it depends on (`pipeline.runner.stage_keys`),
so two variants whose key for a stage is equal need it once. Shared stages live in a
content-addressed folder, `<out>/stages/<stage>-<key>/`, and each variant's stage folder
is a link to it; `PipelineRun` still decides cached / resume / run by the `stage.json`
it finds there, exactly as for a lone pipeline. The report stage is never shared: it
records the variant's own loop.

When the culture varies (task, constitution or prompts), each variant's eval also runs
the other cultures' held-out parts, whole (`eval.whole_tasks`), so every checkpoint is
evaluated on every culture and the report can build the transfer matrix.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cai_bench.experiment.config import ExperimentSpec, Variant
from cai_bench.pipeline.runner import STAGES, stage_keys

UNSHARED = frozenset({"report"})  # records the variant's own loop
CULTURE_KEYS = ("task", "constitution", "prompts")


@dataclass
class StagePlan:
    stage: str
    key: str
    folder: Path  # where its stage.json lives (shared folder, or the variant's own for the report)
    status: str  # cached | resume | compute | share
    shared_with: str | None = None  # the earlier variant that computes it


@dataclass
class VariantPlan:
    variant: Variant
    stages: list[StagePlan] = field(default_factory=list)
    estimates: dict[str, float] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return Path(self.variant.cfg.out)


def shared_folder(out: Path, stage: str, key: str) -> Path:
    return out / "stages" / f"{stage}-{key}"


def _state(folder: Path) -> dict[str, Any] | None:
    f = folder / "stage.json"
    try:
        return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None
    except ValueError:
        return None


def stage_status(folder: Path, key: str) -> str:
    """cached (done with this key), resume (started with it), or compute."""
    state = _state(folder)
    if state and state.get("key") == key:
        return "cached" if state.get("done") else "resume"
    return "compute"


def add_transfer_tasks(spec: ExperimentSpec) -> None:
    """Each variant's eval also runs the held-out parts of the variants of other cultures, whole."""
    culture = {v.name: tuple(getattr(v.cfg, k) for k in CULTURE_KEYS) for v in spec.variants}
    if len(set(culture.values())) < 2:
        return
    held: dict[str, tuple[tuple, str]] = {}  # task key -> (culture, its held-out folder)
    for v in spec.variants:
        key = stage_keys(v.cfg)["task"]
        held.setdefault(key, (culture[v.name], str(shared_folder(spec.out, "task", key) / "eval_task")))
    for v in spec.variants:
        others = [folder for c, folder in held.values() if c != culture[v.name]]
        extra = [t for t in others if t not in v.cfg.eval.whole_tasks]
        if extra:
            v.cfg.eval = v.cfg.eval.model_copy(update={"whole_tasks": [*v.cfg.eval.whole_tasks, *extra]})


def make_plan(spec: ExperimentSpec) -> list[VariantPlan]:
    """Every variant's stages with their status; the first variant needing a key computes it."""
    first: dict[tuple[str, str], str] = {}
    plans: list[VariantPlan] = []
    for v in spec.variants:
        vp = VariantPlan(v)
        keys = stage_keys(v.cfg)
        for st in STAGES:
            key = keys[st.name]
            folder = Path(v.cfg.out) / st.name if st.name in UNSHARED else shared_folder(spec.out, st.name, key)
            status = stage_status(folder, key)
            owner = first.setdefault((st.name, key), v.name)
            shared_with = owner if owner != v.name else None
            if status != "cached" and shared_with is not None:
                status = "share"
            vp.stages.append(StagePlan(st.name, key, folder, status, shared_with))
        plans.append(vp)
    return plans


def link_stages(spec: ExperimentSpec, vp: VariantPlan) -> None:
    """Point the variant's stage folders at the shared copies of their keys (a relative link, so the
    experiment folder may move). A real folder left by a lone run of the variant is adopted when it holds
    the key's work and no shared copy exists, else removed (the pipeline would redo it anyway)."""
    vdir = vp.dir
    vdir.mkdir(parents=True, exist_ok=True)
    for sp in vp.stages:
        if sp.stage in UNSHARED:
            continue
        link = vdir / sp.stage
        if link.is_symlink():
            if link.resolve() == sp.folder.resolve():
                continue
            link.unlink()
        elif link.exists():
            state = _state(link)
            if state and state.get("key") == sp.key and not sp.folder.exists():
                sp.folder.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(link), str(sp.folder))
            else:
                shutil.rmtree(link)
        sp.folder.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(sp.folder, vdir), target_is_directory=True)


def _timed(vp: VariantPlan) -> set[str]:
    try:
        return set(json.loads((vp.dir / "timings.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return set()


def add_estimates(spec: ExperimentSpec, plans: list[VariantPlan]) -> None:
    """The pre-flight's stage estimates (profile times measured on a 2-core CPU scaled to the sizes, or
    the variant's last run), as `pipeline --dry-run` prints them; an eval estimated from the profile also
    pays for the other cultures' held-out parts (which do not exist before the task stages run)."""
    from cai_bench.errors import UserError
    from cai_bench.pipeline.preflight import PROFILE_TIMES, preflight

    held: dict[str, int] = {}  # held-out folder -> its prompts
    scaled: list[VariantPlan] = []
    for vp in plans:
        try:
            pre = preflight(vp.variant.cfg)
        except UserError:
            vp.estimates = {}
            continue
        vp.estimates = dict(pre.estimates)
        folder = shared_folder(spec.out, "task", stage_keys(vp.variant.cfg)["task"]) / "eval_task"
        held[str(folder)] = sum(t.prompts for t in pre.tasks if t.role == "culture under test")
        if "eval" not in _timed(vp):  # an eval timed by a previous run already answered them
            scaled.append(vp)
    for vp in scaled:
        rec = PROFILE_TIMES[vp.variant.cfg.profile]
        per_prompt = rec["seconds"]["eval_generate"] / rec["sizes"]["eval_prompts"]
        extra = sum(held.get(t, 0) for t in vp.variant.cfg.eval.whole_tasks)
        vp.estimates["eval"] = vp.estimates.get("eval", 0.0) + per_prompt * extra


def plan_lines(spec: ExperimentSpec, plans: list[VariantPlan]) -> list[str]:
    """The variants, what each stage does, and the time the computed stages should take."""
    lines = [f"experiment {spec.title!r}: {len(plans)} variant(s) over {', '.join(spec.axes)}; out {spec.out}; "
             f"store {spec.store}"]
    total = 0.0
    base_evals: set[str] = set()  # the base model's answers, once per eval set, through the shared store
    for vp in plans:
        parts, secs = [], 0.0
        cfg = vp.variant.cfg
        evals = json.dumps([cfg.student, stage_keys(cfg)["task"], cfg.eval.model_dump(mode="json")], sort_keys=True)
        for sp in vp.stages:
            word = f"shared with {sp.shared_with}" if sp.status == "share" else sp.status
            parts.append(f"{sp.stage} {word}")
            if sp.status in ("compute", "resume"):
                # an eval whose base answers an earlier variant stores evaluates two checkpoints of three
                scale = 2 / 3 if sp.stage == "eval" and evals in base_evals else 1.0
                secs += vp.estimates.get(sp.stage, 0.0) * scale
        base_evals.add(evals)
        total += secs
        est = f" (~{secs / 60:.0f} min)" if vp.estimates else ""
        lines.append(f"  {vp.variant.name}{est}: " + ", ".join(parts))
        for k in vp.variant.cfg.eval.whole_tasks:
            lines.append(f"    also evaluated whole: {k}")
    counts = plan_counts(plans)
    lines.append("  stages: " + ", ".join(f"{s} {c['compute']} to compute / {c['share']} shared / {c['cached']} cached"
                                          for s, c in counts.items()))
    if any(vp.estimates for vp in plans):
        lines.append(f"  estimated time of the stages to compute: ~{total / 60:.0f} min (pre-flight estimates: "
                     "profile stage times measured on a 2-core CPU scaled to each variant's sizes, or its last run)")
    return lines


def plan_counts(plans: list[VariantPlan]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {st.name: {"compute": 0, "share": 0, "cached": 0} for st in STAGES}
    for vp in plans:
        for sp in vp.stages:
            counts[sp.stage]["compute" if sp.status == "resume" else sp.status] += 1
    return counts


def stage_counts(plans: list[VariantPlan], before: dict[tuple[str, str], bool]) -> dict[str, dict[str, int]]:
    """Per stage, over the variants that finished it: `computed` (distinct keys: each computed once),
    `shared` (variants that reused another's), and `run_now` (computed by this invocation)."""
    out: dict[str, dict[str, int]] = {}
    for st in STAGES:
        done_keys: list[str] = []
        fresh: set[str] = set()
        for vp in plans:
            sp = next(s for s in vp.stages if s.stage == st.name)
            if stage_status(sp.folder, sp.key) == "cached":
                done_keys.append(sp.key if st.name not in UNSHARED else f"{vp.variant.name}:{sp.key}")
                if not before.get((str(sp.folder), sp.key)):
                    fresh.add(done_keys[-1])
        out[st.name] = {"computed": len(set(done_keys)), "shared": len(done_keys) - len(set(done_keys)),
                        "run_now": len(fresh)}
    return out


def done_before(plans: list[VariantPlan]) -> dict[tuple[str, str], bool]:
    return {(str(sp.folder), sp.key): sp.status == "cached" for vp in plans for sp in vp.stages}
