"""`cai-bench run`: plan the work matrix, generate for every checkpoint (one model
in memory at a time), then score (one scorer at a time). Reports are not the
harness's job: the CLI command reads the store back through `cai_bench.reports`.

Everything already in the store is reused; the plan only holds prompt ids, and
the store says which of them still need a response or a score.

Tasks differ only in their kind (`Task.output_type`): `PLANNERS` maps each kind to
the planner of its part of the run (a `KindPlan`), and `run` drives every part
through the same steps (register, answer, score). `generate_until` tasks are
generated here and scored by the scorers; `multiple_choice` tasks are decided by
log-likelihoods (`harness.loglik`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cai_bench.errors import UserError
from cai_bench.harness.config import RunConfig, expand_checkpoints, gen_hash
from cai_bench.harness.kinds import KindPlan, RunContext, RunResult
from cai_bench.harness.leases import Leases
from cai_bench.results import Store, Unit, normalize_url

if TYPE_CHECKING:
    from cai_bench.harness.generate import Sampling
    from cai_bench.harness.sample import Sample
    from cai_bench.tasks import PromptIdentity
    from cai_bench.harness.scoring import ScorerStatus
    from cai_bench.models import ResolvedCheckpoint
    from cai_bench.tasks import Task

log = logging.getLogger("cai_bench.harness")
__all__ = ["PLANNERS", "GenerationPlan", "KindPlan", "Plan", "RunContext", "RunResult", "make_plan", "plan_generation",
           "run"]


Planner = Callable[[RunConfig, "list[ResolvedCheckpoint]", "list[Task]"], KindPlan]


@dataclass
class GenerationPlan:
    """The `generate_until` part: generate each task's prompts in scope, then score them."""

    checkpoints: list["ResolvedCheckpoint"]
    tasks: list["Task"]
    prompt_ids: dict[str, tuple[str, ...]]  # task id -> prompt ids in scope
    sampling: dict[str, "Sampling"]  # task id -> resolved sampling
    units: list[Unit]
    samples: dict[str, "Sample"] = field(default_factory=dict)  # task id -> how its prompts were drawn
    identities: dict[str, dict[str, "PromptIdentity"]] = field(default_factory=dict)  # task -> prompt -> hashes
    engine: str = "hf"  # generation engine of local checkpoints (part of their units' gen_hash)

    def sample_json(self) -> dict[str, Any]:
        return {tid: s.as_json() for tid, s in self.samples.items()}

    def register(self, store: Store) -> None:
        _register_generation(store, self)

    def answer(self, ctx: RunContext) -> None:
        _generate(ctx.store, ctx.run_id, self, ctx.cfg, ctx.progress, ctx.result, ctx.leases)

    def score(self, ctx: RunContext) -> list["ScorerStatus"]:
        from cai_bench.harness.scoring import run_scoring

        return run_scoring(ctx.store, ctx.run_id, self.units, ctx.scorers, force=ctx.cfg.force,
                           progress=ctx.progress, leases=ctx.leases, poll_seconds=ctx.cfg.workers.poll_seconds,
                           units_done=ctx.result.units_done, checkpoints=self.checkpoints) if self.units else []


def plan_generation(cfg: RunConfig, ckpts: list["ResolvedCheckpoint"], tasks: list["Task"]) -> GenerationPlan:
    """Choose each task's prompts (`limit`: a seeded sample stratified by principle, or the first
    N with `limit_mode: head`) and sampling; one unit per checkpoint x task."""
    from cai_bench.harness.generate import resolve_sampling
    from cai_bench.harness.sample import sample_task
    from cai_bench.tasks import task_identities

    samples = {t.id: sample_task(t, cfg.limit, seed=cfg.seed, mode=cfg.limit_mode) for t in tasks}
    prompt_ids = {t.id: samples[t.id].prompt_ids for t in tasks}
    sampling = {t.id: resolve_sampling(t, cfg.generation, cfg.seed) for t in tasks}
    identities = {t.id: task_identities(t) for t in tasks}
    units = [
        Unit(ck.fingerprint, t.id, gen_hash(**vars(sampling[t.id]), engine=engine_of(ck, cfg.generation.engine)),
             prompt_ids[t.id], tuple(identities[t.id][p].input_hash for p in prompt_ids[t.id]),
             tuple(identities[t.id][p].content_hash for p in prompt_ids[t.id]))
        for ck in ckpts for t in tasks
    ]
    return GenerationPlan(ckpts, tasks, prompt_ids, sampling, units, samples, identities, cfg.generation.engine)


def _plan_multiple_choice(cfg: RunConfig, ckpts: list["ResolvedCheckpoint"], tasks: list["Task"]) -> KindPlan:
    from cai_bench.harness.loglik import plan_loglik

    return plan_loglik(cfg, ckpts, tasks)


# Task kind (`Task.output_type`) -> the planner of its part of a run: the one place a run tells
# kinds apart. Parts run in this order (generation first, so its model is closed before the next).
PLANNERS: dict[str, Planner] = {"generate_until": plan_generation, "multiple_choice": _plan_multiple_choice}


@dataclass
class Plan:
    """A run's work: the checkpoints, every task, and each task kind's part (in `PLANNERS` order)."""

    checkpoints: list["ResolvedCheckpoint"]
    tasks: list["Task"]  # every task, in the order given
    parts: dict[str, KindPlan]  # output_type -> its part
    engine: str = "hf"  # generation engine of local checkpoints (stored with them)

    @property
    def generation(self) -> GenerationPlan | None:
        part = self.parts.get("generate_until")
        return part if isinstance(part, GenerationPlan) else None

    @property
    def units(self) -> list[Unit]:
        """The generated units (what `--force` and the scorers act on)."""
        return self.generation.units if self.generation else []

    @property
    def sampling(self) -> dict[str, "Sampling"]:
        return self.generation.sampling if self.generation else {}

    def units_for(self, fingerprint: str) -> list[Unit]:
        return [u for u in self.units if u.fingerprint == fingerprint]


def make_plan(cfg: RunConfig) -> Plan:
    """Resolve checkpoints (globs, fingerprints) and tasks, and plan each task kind's part
    through its planner in `PLANNERS`."""
    from cai_bench.models import resolve_checkpoint
    from cai_bench.tasks import load_task

    if not cfg.checkpoints:
        raise UserError("no checkpoints: pass --checkpoint SPEC (or list them under checkpoints: in the run config)")
    if not cfg.tasks:
        raise UserError("no tasks: pass --task ID (or list them under tasks: in the run config)")
    ckpts: list[ResolvedCheckpoint] = []
    seen: set[str] = set()
    for spec in expand_checkpoints(cfg.checkpoints):
        ck = resolve_checkpoint(spec, openai_base_url=cfg.openai.base_url, ollama_host=cfg.ollama.base_url)
        if ck.fingerprint not in seen:  # the same weights under two names are evaluated once
            seen.add(ck.fingerprint)
            ckpts.append(ck)
    tasks = [load_task(tid) for tid in dict.fromkeys(cfg.tasks)]
    parts = {kind: planner(cfg, ckpts, [t for t in tasks if t.output_type == kind])
             for kind, planner in PLANNERS.items() if any(t.output_type == kind for t in tasks)}
    return Plan(ckpts, tasks, parts, cfg.generation.engine)


def engine_of(ck: "ResolvedCheckpoint", engine: str) -> str:
    """The engine that answers for `ck`: the configured one for local weights; a
    served checkpoint (openai:, ollama:) is its own engine."""
    return engine if ck.is_local else "hf"


def _register(store: Store, run_id: str, plan: Plan) -> None:
    """Checkpoints, the prompts each task's `--limit` drew, then each part's tasks and configs."""
    samples: dict[str, Any] = {}
    for part in plan.parts.values():
        samples.update(part.sample_json())
    store.set_run_sample(run_id, samples)
    for ck in plan.checkpoints:
        meta = {**ck.metadata, "model": ck.model, "adapter": ck.adapter, "base_url": ck.base_url,
                "engine": plan.engine if ck.is_local else None}
        store.upsert_checkpoint(run_id, fingerprint=ck.fingerprint, spec=ck.spec, kind=ck.kind, label=ck.label,
                                metadata={k: v for k, v in meta.items() if v is not None})
    for part in plan.parts.values():
        part.register(store)


def _register_generation(store: Store, plan: GenerationPlan) -> None:
    """The generation configs by hash, and the tasks' current prompt versions (with their hashes)."""
    from cai_bench.tasks import task_constitution

    for ck in plan.checkpoints:
        for tid, sampling in plan.sampling.items():
            engine = engine_of(ck, plan.engine)
            store.upsert_gen_config(gen_hash(**vars(sampling), engine=engine),
                                    {**vars(sampling), **({"engine": engine} if engine != "hf" else {})})
    for t in plan.tasks:
        try:
            titles = {p.id: p.title for p in task_constitution(t).principles}
        except UserError:
            titles = {}
        used = set(plan.prompt_ids[t.id])  # only the prompts this run answers are stored (--limit: a sample)
        store.upsert_task(
            task_id=t.id, constitution_id=t.constitution, culture=t.culture, n_prompts=len(t.prompts),
            metadata={"principles": titles, "description": t.description, "analyses": list(t.analyses),
                      "metrics": {k: m.model_dump(exclude_none=True) for k, m in t.metrics.items()},
                      "prompts_per_principle": {k: of for k, (_, of) in plan.samples[t.id].per_principle.items()}},
            prompts=[{"prompt_id": p.id, "prompt": p.prompt, "principle_id": p.principle_id,
                      "reference": p.reference, "category": p.category, "expect": p.expect,
                      "input_hash": plan.identities[t.id][p.id].input_hash,
                      "content_hash": plan.identities[t.id][p.id].content_hash} for p in t.prompts if p.id in used],
            current={pid: ident.content_hash for pid, ident in plan.identities[t.id].items()},
        )


def _generate(store: Store, run_id: str, plan: GenerationPlan, cfg: RunConfig, progress: Any, result: RunResult,
              leases: "Leases") -> None:
    """Phase 1: claim generation units (chunks of one checkpoint x task) until none
    is left, loading a checkpoint's model only when a claimed unit needs it and
    preferring units of the model already loaded; each chunk is committed at once.
    A prompt a served model fails on for good is an error row, not a response: it
    stays missing, so the next run retries it; the other prompts go on. Returns when every unit is done (by this worker or another): scoring needs them all."""
    from cai_bench.harness.generate import engine_group, load_generator
    from cai_bench.harness.leases import plan_unit_work

    tasks = {t.id: t for t in plan.tasks}
    ckpts = {ck.fingerprint: ck for ck in plan.checkpoints}
    plan_units = {(u.fingerprint, u.task_id, u.gen_hash): u for u in plan.units}  # with the prompts' hashes
    todo, bars, reused = plan_unit_work(store, plan.units, force=cfg.force, chunk=cfg.generation.chunk_size,
                                        progress=progress, verb="generate", label=lambda fp: ckpts[fp].label,
                                        need=lambda u: set(store.missing_prompts(u)))
    result.generations_reused += reused
    leases.register(todo)
    groups: dict[str, list["ResolvedCheckpoint"]] = {}  # checkpoints one loaded engine answers (vLLM: base + adapters)
    for ck in plan.checkpoints:
        groups.setdefault(engine_group(ck, cfg.generation), []).append(ck)
    generator, loaded = None, None  # loaded: the group of the loaded generator
    try:
        while todo:
            prefer = {"fingerprint": [c.fingerprint for c in groups[loaded]]} if loaded else None
            wu = leases.claim(todo, prefer=prefer)
            if wu is None:
                if generator is not None:  # free the model while others finish their units
                    generator.close()
                    generator, loaded = None, None
                if leases.all_done(todo):
                    break
                time.sleep(cfg.workers.poll_seconds)
                continue
            ck, unit = ckpts[wu.fingerprint], plan_units[(wu.fingerprint, wu.task_id, wu.gen_hash)].subset(wu.items)
            bar = bars[(wu.fingerprint, wu.task_id)]
            with leases.holding(wu):
                ids = store.missing_prompts(unit)  # what a dead holder left undone, or nothing
                if ids:
                    group = engine_group(ck, cfg.generation)
                    if loaded != group:
                        if generator is not None:
                            generator.close()
                            generator, loaded = None, None
                        generator = load_generator(ck, cfg.generation, cfg.openai, cfg.ollama, groups[group])
                        loaded = group
                        result.models_loaded += 1
                    generator.use(ck)
                    if ck.is_local and cfg.generation.engine != "vllm":
                        from cai_bench.cpu_threads import apply

                        apply(f"generating with {ck.label}", min_interval=30.0)
                    try:
                        rows = generator.generate(tasks[wu.task_id], ids, plan.sampling[wu.task_id])
                    except UserError:
                        leases.release(wu)
                        raise
                    except Exception as exc:  # noqa: BLE001 - one line for the user, chunks so far are kept
                        leases.release(wu)
                        raise UserError(
                            f"{ck.spec}: generation failed on task {wu.task_id}: {type(exc).__name__}: {exc} "
                            f"({result.generated} new responses are stored; re-run to continue)") from exc
                    answers = [(a.prompt_id, a.text, a.seconds) for a in rows if a.error is None]
                    result.generated += store.insert_generations(run_id, unit, answers)
                    failed = [(a.prompt_id, a.error) for a in rows if a.error is not None]
                    result.generation_errors += store.record_generation_errors(run_id, unit, failed)
                    for pid, err in failed[:3]:
                        log.warning("%s: prompt %s of %s failed: %s", ck.spec, pid, wu.task_id, err)
                    progress.advance(bar, len(ids))
            if leases.complete(wu, worked=bool(ids)) and ids:
                result.units_done.append(wu.key)
    finally:
        if generator is not None:
            generator.close()


def _threads_for(cfg: RunConfig, plan: Plan, prepared: list) -> Any:
    """The torch thread choice (`cai_bench.cpu_threads`) when this run computes on the CPU
    in-process (local checkpoints on transformers, scorer models), else None (torch not imported)."""
    local = any(ck.is_local for ck in plan.checkpoints) and cfg.generation.engine != "vllm"
    if not local and not any(s is not None and not s.remote for s, _ in prepared):
        return None
    from cai_bench.cpu_threads import apply

    return apply("run")


def _with_runtime(config_json: str, threads: Any) -> str:
    """The run's stored config, plus how it ran (the thread choice): provenance, not identity."""
    if threads is None:
        return config_json
    data = json.loads(config_json)
    data["runtime"] = {"threads": threads.as_dict()}
    return json.dumps(data, sort_keys=True)


def run(cfg: RunConfig, *, console: Any = None) -> RunResult:
    """Execute a run end to end; returns what was done and reused."""
    from cai_bench import __version__
    from cai_bench.console import make_progress
    from cai_bench.harness.scoring import prepare_scorers
    from cai_bench.models.chat.circuit import drain_opened

    started = time.perf_counter()
    drain_opened()  # circuits opened by an earlier command in this process are not this run's
    prepared = prepare_scorers(cfg.scorers, download=cfg.download_models,  # unknown ids / bad settings fail first
                               allow_self_grading=cfg.allow_self_grading)
    plan = make_plan(cfg)
    out_dir = Path(cfg.out).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    url = normalize_url(cfg.store, str(out_dir))
    store = Store(url)
    run_id = store.start_run(_with_runtime(cfg.public_json(), _threads_for(cfg, plan, prepared)), cfg.seed,
                             __version__)
    result = RunResult(run_id, url, out_dir, fingerprints=[ck.fingerprint for ck in plan.checkpoints])
    leases = Leases(store.engine, ttl=cfg.workers.lease_seconds)
    result.worker = leases.owner
    status, interrupt = "failed", None
    try:
        store.set_run_scorers(run_id, [st.as_json() for _, st in prepared])
        _register(store, run_id, plan)
        with make_progress() as progress:
            ctx = RunContext(store, run_id, cfg, progress, result, leases, list(prepared))
            for part in plan.parts.values():  # each closes its model before the next loads one
                part.answer(ctx)
            result.scorers = [st for part in plan.parts.values() for st in part.score(ctx)]
        store.set_run_scorers(run_id, [st.as_json() for st in result.scorers])
        result.scored = sum(s.scored for s in result.scorers)
        result.scores_reused = sum(s.reused for s in result.scorers)
        status = "finished"
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as the CLI turns it: stopped, not broken; a re-run continues
        status, interrupt = "interrupted", exc
        raise
    finally:
        store.finish_run(run_id, status, interrupted_by=interrupt)
        store.close()
        result.circuits = drain_opened()
    result.seconds = time.perf_counter() - started
    return result
