"""Run an experiment: every variant's task stage first (cheap; the held-out folders the
other cultures' evals need), then each variant's pipeline, recording the experiment
in the shared store after each one so a crash loses nothing. A variant stopped by
the quality gate, a `UserError` or an unexpected error (its traceback in the variant's
error.log) is recorded as such and the others go on; the command then exits 1.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cai_bench.errors import UserError
from cai_bench.experiment.config import ExperimentSpec
from cai_bench.experiment.plan import (VariantPlan, add_estimates, add_transfer_tasks, done_before, link_stages,
                                       make_plan, plan_lines, stage_counts)
from cai_bench.paths import atomic_write_text
from cai_bench.pipeline.runner import STAGES


def _record(spec: ExperimentSpec) -> Any:
    from cai_bench.results.experiments import ExperimentRecord, VariantRecord, experiment_id_for

    return ExperimentRecord(experiment_id=experiment_id_for(str(spec.out)), title=spec.title, axes=spec.axes,
                            variants=[VariantRecord(v.name, v.values) for v in spec.variants],
                            correction=spec.correction, seed=spec.variants[0].cfg.seed, config=spec.config)


def _put(url: str, record: Any) -> None:
    from cai_bench.results import Store

    store = Store(url)
    try:
        store.put_experiment(record)
    finally:
        store.close()


def _write_config(vp: VariantPlan) -> None:
    """The variant's pipeline config, as `cai-bench pipeline --config` takes it (resumes the variant alone)."""
    cfg = vp.variant.cfg
    atomic_write_text(vp.dir / "pipeline_config.json", cfg.model_dump_json(indent=2) + "\n")


def _failed_stage(vp: VariantPlan) -> str | None:
    from cai_bench.experiment.plan import stage_status

    return next((sp.stage for sp in vp.stages if stage_status(sp.folder, sp.key) != "cached"), None)


def _fail(var: Any, vp: VariantPlan, exc: UserError) -> None:
    var.reason = exc.message.splitlines()[0] if exc.message else type(exc).__name__
    stage = _failed_stage(vp)
    quality = next((sp.folder / "quality.json" for sp in vp.stages if sp.stage == "data"), None)
    # the gate stops the data stage, or a cached data stage re-gated under stricter thresholds
    if stage in ("data", "sft") and "quality gate" in exc.message and quality is not None and quality.is_file():
        var.status = "gate"
        var.gate = json.loads(quality.read_text(encoding="utf-8"))
    else:
        var.status = "failed"


def _crash(vp: VariantPlan, exc: Exception) -> str:
    """One line for an unexpected error in a variant; its traceback goes to the variant's error.log."""
    import traceback

    log = vp.dir / "error.log"
    atomic_write_text(log, "".join(traceback.format_exception(exc)))
    first = str(exc).splitlines()[0] if str(exc) else ""
    stage = _failed_stage(vp)
    return (f"{type(exc).__name__}" + (f": {first[:300]}" if first else "")
            + (f" in its {stage} stage" if stage else "") + f" (traceback: {log})")


def _task_stage(vp: VariantPlan, console: Any) -> None:
    from cai_bench.pipeline.runner import PipelineRun
    from cai_bench.pipeline.stages import check_inputs

    check_inputs(vp.variant.cfg)
    PipelineRun(vp.variant.cfg, console).stage(0, STAGES[0])


def run_experiment(spec: ExperimentSpec, console: Any, *, dry_run: bool = False) -> Any:
    """Every variant of `spec`, sharing stages and one store; returns the `ExperimentRecord`
    (`dry_run`: prints the plan and the estimates, writes nothing, returns None)."""
    from cai_bench.pipeline.runner import run_pipeline

    started = time.perf_counter()
    add_transfer_tasks(spec)
    plans = make_plan(spec)
    if dry_run:
        add_estimates(spec, plans)
    for line in plan_lines(spec, plans):
        console.print(line, highlight=False, markup=False)
    if dry_run:
        return None
    before = done_before(plans)
    spec.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(spec.out / "experiment.json", json.dumps(
        {"title": spec.title, "correction": spec.correction, **spec.config}, indent=2, default=str) + "\n")
    record = _record(spec)
    _put(spec.store, record)
    by_name = {v.name: v for v in record.variants}
    for vp in plans:  # task stages first: the held-out folders every culture's eval needs
        link_stages(spec, vp)
        _write_config(vp)
        try:
            _task_stage(vp, console)
        except UserError as exc:
            _fail(by_name[vp.variant.name], vp, exc)
            console.print(f"[red]variant {vp.variant.name} failed:[/red] {by_name[vp.variant.name].reason}")
    for i, vp in enumerate(plans):
        var = by_name[vp.variant.name]
        if var.status == "failed":
            continue
        console.rule(f"variant {i + 1}/{len(plans)}: {vp.variant.name}")
        try:
            loop = run_pipeline(vp.variant.cfg, console)
            var.status, var.loop_id, var.reason, var.gate = "done", loop.record.loop_id, None, None
        except UserError as exc:
            _fail(var, vp, exc)
            console.print(f"[red]variant {vp.variant.name} stopped ({var.status}):[/red] {var.reason}")
        except Exception as exc:  # noqa: BLE001 - a bug or a broken input in one variant; the others still run
            var.status, var.reason = "failed", _crash(vp, exc)
            console.print(f"[red]variant {vp.variant.name} failed:[/red] {var.reason}", soft_wrap=True)
        except KeyboardInterrupt:
            _put(spec.store, record)  # what finished is recorded; the same command continues
            raise
        record.stage_counts = stage_counts(plans, before)
        _put(spec.store, record)  # after each variant: a crash loses nothing
    record.stage_counts = stage_counts(plans, before)
    _put(spec.store, record)
    computed = any(c["run_now"] for c in record.stage_counts.values())
    report = write_experiment_report(spec) if computed or not (spec.out / "report" / "experiment.md").is_file() \
        else spec.out / "report"  # nothing new: the report stands (and no embedder is loaded)
    for line in closing_lines(record, time.perf_counter() - started, report):
        console.print(line, highlight=False, markup=False)
    return record


def write_experiment_report(spec: ExperimentSpec) -> Path | None:
    """The `reports` package's report of the shared store into <out>/report/ (what `cai-bench report --store`
    writes: the experiment section, its answers linked to the training data by the sentence embedder);
    None when no variant reached its eval."""
    from cai_bench.embeddings import embed
    from cai_bench.harness.declarations import late_declarations
    from cai_bench.reports.writer import DEFAULT_FORMATS, prepare, write_files

    url = spec.store
    cfg = spec.variants[0].cfg
    try:
        data = prepare(url, formats=DEFAULT_FORMATS, seed=cfg.seed, n_boot=cfg.eval.n_boot,
                       late=late_declarations(url), embed=embed)
    except UserError:  # no scores yet: every variant stopped before its eval
        return None
    return write_files(data, spec.out, DEFAULT_FORMATS, seed=cfg.seed, n_boot=cfg.eval.n_boot, combined_csv=False)


def closing_lines(record: Any, seconds: float, report: Path | None) -> list[str]:
    lines = [f"experiment {record.title!r}: {len(record.variants)} variant(s) in {seconds:.1f}s"]
    for v in record.variants:
        lines.append(f"  {v.name}: {v.status}" + (f" ({v.reason})" if v.reason else ""))
    lines.append("  stages (computed once / shared / computed by this run): "
                 + ", ".join(f"{s} {c['computed']}/{c['shared']}/{c['run_now']}"
                             for s, c in record.stage_counts.items()))
    if report is not None:
        lines.append(f"  report: {report / 'experiment.md'} and {report / 'index.html'} (regenerate: cai-bench "
                     "report --store <out>/results.sqlite)")
    return lines
