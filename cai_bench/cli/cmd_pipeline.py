"""`cai-bench pipeline`: the whole CAI loop, from a constitution to a base vs SFT vs DPO verdict."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cai_bench.cli._app import app
from cai_bench.cli._options import THREADS, use_threads
from cai_bench.console import console


@app.command("pipeline")
def pipeline(
    config: Optional[Path] = typer.Argument(None, help="Pipeline config YAML (see docs/pipeline.md)."),
    task: Optional[str] = typer.Option(None, "--task", help="A built-in task id or task folder to split."),
    constitution: Optional[str] = typer.Option(None, "--constitution", help="Constitution id or YAML (with --prompts)."),
    prompts: Optional[str] = typer.Option(None, "--prompts", help="Prompts jsonl/csv (with --constitution); "
                                          "without it a model writes them (see --synthesize-with)."),
    synthesize_with: Optional[str] = typer.Option(None, "--synthesize-with",
                                                  help="Chat-model spec that writes the prompts from --constitution "
                                                  "(default: the data generator, else the student)."),
    profile: Optional[str] = typer.Option(None, "--profile", help="cpu-small (default) or gpu-7b."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default runs/pipeline)."),
    student: Optional[str] = typer.Option(None, "--student", help="Checkpoint spec of the model to train."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help="Override a config field: dotted.key=value "
                                                  "(YAML value), e.g. split.max_train=32. Repeatable."),
    allow_overlap: bool = typer.Option(False, "--allow-overlap", help="Go on when training data overlaps eval prompts."),
    allow_low_quality: bool = typer.Option(False, "--allow-low-quality",
                                           help="Train even when the data quality gate fails."),
    allow_no_verdict: bool = typer.Option(False, "--allow-no-verdict",
                                          help="Train even when the pre-flight finds no metric that can judge the "
                                          "culture under test."),
    vary: Optional[List[str]] = typer.Option(None, "--vary", help="Run an experiment instead: vary a config key "
                                             "over values, KEY=v1,v2 (YAML values; repeatable: the product of the "
                                             "axes). The variants go under --out/variants/ (docs/experiments.md)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the pre-flight (what each eval task can be judged "
                                 "on, HHH data, estimated stage times) and the stage plan; write nothing."),
    threads: Optional[int] = THREADS,
) -> None:
    """Run task split -> CAI data -> SFT -> DPO -> eval -> report; every stage cached and resumable."""
    from cai_bench.io import parse_assignment, set_path
    from cai_bench.pipeline import build_config, load_config_file
    from cai_bench.pipeline.runner import run_pipeline

    use_threads(threads)

    raw, lines, source = ({}, {}, "pipeline options")
    if config is not None:
        raw, lines = load_config_file(config)
        source = str(config)
    for key, value in (("task", task), ("constitution", constitution), ("prompts", prompts), ("profile", profile),
                       ("out", str(out) if out else None), ("student", student)):
        if value is not None:
            raw[key] = value
    for item in overrides or []:
        key, value = parse_assignment(item, form="[SECTION.]KEY=VALUE")
        set_path(raw, key.split("."), value, where=f"--set {item!r}")
    if synthesize_with is not None:
        raw.setdefault("synthesize", {})["generator"] = synthesize_with
    if allow_overlap:
        raw["allow_overlap"] = True
    if allow_low_quality:
        raw.setdefault("data", {})["allow_low_quality"] = True
    if allow_no_verdict:
        raw["allow_no_verdict"] = True
    if vary:
        from cai_bench.experiment import run_experiment, spec_from_vary

        from cai_bench.cli.cmd_experiment import exit_if_a_variant_failed

        spec = spec_from_vary(raw, list(vary), source=source, base_lines=lines, out=None)
        exit_if_a_variant_failed(run_experiment(spec, console, dry_run=dry_run))
        return
    cfg = build_config(raw, source=source, lines=lines)
    run_pipeline(cfg, console, dry_run=dry_run)
