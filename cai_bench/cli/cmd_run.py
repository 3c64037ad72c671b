"""`cai-bench run`: evaluate checkpoints on constitution tasks, store, rank."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from cai_bench.cli._app import app
from cai_bench.cli._options import STORE, THREADS, TRUST_REMOTE_CODE, use_threads
from cai_bench.redact import redact_text

if TYPE_CHECKING:
    from rich.console import Console

    from cai_bench.harness.runner import RunResult


@app.command("run")
def run_cmd(
    config: Optional[Path] = typer.Argument(None, help="Run config YAML (flags override it)."),
    checkpoint: List[str] = typer.Option([], "--checkpoint", "-c", help="Checkpoint spec or glob; repeatable."),
    task: List[str] = typer.Option([], "--task", "-t", help="Task id; repeatable."),
    scorer: List[str] = typer.Option([], "--scorer", "-s", help="Scorer id or 'all'; repeatable. "
                              "A scorer the config configures keeps its settings. "
                              "(default: every scorer that runs here without downloading a model)"),
    scorer_set: List[str] = typer.Option([], "--scorer-set", metavar="SCORER.KEY=VALUE",
                                         help="One scorer setting, e.g. judge.backend=hf; repeatable; "
                                              "overrides the config's."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1,
                                        help="N prompts of each task: a seeded sample spread over its principles "
                                        "(the same for every checkpoint; a larger N extends a smaller one)."),
    limit_mode: Optional[str] = typer.Option(None, "--limit-mode",
                                             help="stratified (default) or head (the first N in task order)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: ./cai-bench-out)."),
    store: Optional[str] = STORE,
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling and bootstrap."),
    force: bool = typer.Option(False, "--force", help="Recompute responses and scores already stored."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.0),
    top_p: Optional[float] = typer.Option(None, "--top-p"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", min=1,
                                             help="Prompts per committed chunk (a kill loses at most one)."),
    chat_template: Optional[bool] = typer.Option(None, "--chat-template/--no-chat-template"),
    no_report: bool = typer.Option(False, "--no-report", help="Skip the report and leaderboard."),
    engine: Optional[str] = typer.Option(None, "--engine", help="Engine for local checkpoints: hf (lm-eval's HF "
                                         "model, default) or vllm (a vLLM server; docs/scale.md)."),
    vllm_python: Optional[str] = typer.Option(None, "--vllm-python", help="Engine vllm: the python that has vLLM "
                                              "(default: generation.vllm.python, $CAI_BENCH_VLLM_PYTHON, else this one)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1,
                                          help="Local worker processes sharing the run through the store's "
                                               "leases (more workers elsewhere: run the same command with the "
                                               "same --store; docs/scale.md)."),
    lease_seconds: Optional[float] = typer.Option(None, "--lease-seconds", min=1.0,
                                                  help="A silent worker's claimed units go to others after "
                                                       "this long (default 120)."),
    baseline: Optional[str] = typer.Option(
        None, "--baseline", help="With several checkpoints: print paired deltas against this one (as given: "
        "spec, relative path, label or fingerprint). (default: the first checkpoint)"),
    hhh_path: Optional[str] = typer.Option(None, "--hhh-path", help="The CAI paper's 438HHHEvaluations.jsonl for "
                                           "-t hhh_alignment (default: $CAI_BENCH_HHH_PATH, a shared data folder, "
                                           "`cai-bench data fetch hhh`'s copy)."),
    allow_self_grading: bool = typer.Option(False, "--allow-self-grading",
                                            help="Let a judge score the checkpoint it is (or the base of an "
                                                 "adapter under test); recorded in each scorer's config and "
                                                 "shown in the report. (default: refused for that checkpoint)"),
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    threads: Optional[int] = THREADS,
) -> None:
    """Generate responses for every checkpoint x task, score them, write the report and print the leaderboard.

    -t hhh_alignment (and hhh_alignment_response) scores local checkpoints by log-likelihood on the CAI paper's
    HHH items instead (no generation, no scorer models); its results sit in the same store and leaderboards.

    Prints one sample answer, the leaderboard per culture and a table per task; OUT/leaderboard.csv holds both levels (column `level`). A re-run does only what is missing, and retries failed scores.

    With no arguments at all, runs the embedded default (bundled SmolLM2 on the built-in culture tasks)."""
    from cai_bench.console import safe as escape  # markup-escaped, control characters made visible

    use_threads(threads)

    from cai_bench.console import console, err_console
    from cai_bench.harness.config import (RunConfig, apply_overrides, apply_scorer_flags, default_config,
                                          load_config_file, relative_to_config)
    from cai_bench.harness.runner import run
    from cai_bench.reports.terminal import print_coverage
    from cai_bench.results import redact_url
    from cai_bench.results.coverage import Coverage
    from cai_bench.trust import allow_remote_code

    allow_remote_code(trust_remote_code)

    flags = dict(checkpoints=checkpoint, tasks=task, limit=limit, limit_mode=limit_mode, out=out, store=store, seed=seed, force=force,
                 max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, batch_size=batch_size,
                 chunk_size=chunk_size, chat_template=chat_template, engine=engine, vllm_python=vllm_python, workers=workers,
                 lease_seconds=lease_seconds, hhh_path=hhh_path, allow_self_grading=allow_self_grading)
    given = bool(scorer or scorer_set) or any(v not in (None, False, [], ()) for v in flags.values())
    if config is not None:
        cfg = load_config_file(config)
    elif not given:
        cfg = default_config()
        err_console.print("[bold]no arguments:[/bold] running the embedded default "
                          f"({', '.join(cfg.checkpoints)} on {', '.join(cfg.tasks)}, --limit {cfg.limit}, "
                          "each task's own max_new_tokens, every scorer that can run here)")
    else:
        base = default_config()
        cfg = RunConfig(tasks=base.tasks, scorers=base.scorers, download_models=bool(scorer))
    cfg = apply_scorer_flags(apply_overrides(cfg, **flags), scorer, scorer_set)
    if cfg.workers.count > 1:
        from cai_bench.harness.workers import combine, run_workers

        result = combine(run_workers(cfg, cfg.workers.count))
    else:
        result = run(cfg, console=console)
    for st in result.scorers:
        if not st.available:
            err_console.print(f"[yellow]scorer {escape(st.id)} unavailable:[/yellow] {escape(redact_text(st.reason))}")
        for line in st.refused:
            err_console.print(f"[yellow]{escape(line)}[/yellow]", highlight=False)
    err_console.print(f"[bold]{result.summary_line()}[/bold]  ({result.seconds:.1f} s, store {redact_url(result.store_url)})")
    for line in result.circuits:  # an endpoint that stopped answering: what was skipped and why
        err_console.print(f"[yellow]{escape(redact_text(line))}[/yellow]", highlight=False)
    if baseline is not None and config is not None:
        baseline = relative_to_config(baseline, config.resolve().parent)
    if baseline is None and len(result.fingerprints) > 1:
        baseline = result.fingerprints[0]
    if cfg.report and not no_report:
        report_dir = _report(result, console, seed=cfg.seed, n_boot=cfg.n_boot, baseline=baseline)
        if report_dir is not None:
            err_console.print(f"report: {report_dir}  leaderboard: {result.out_dir / 'leaderboard.csv'}")
    # last, so that a scorer which scored little, or agrees with people at chance level, is what a user sees last
    print_coverage([Coverage(st.id, **st.coverage) for st in result.scorers if st.available and st.coverage],
                   console, err_console)
    from cai_bench.reports.validity import run_warnings

    for line in run_warnings(result.store_url, [(st.id, st.config_hash) for st in result.scorers if st.available]):
        err_console.print(f"[bold yellow]{escape(line)}[/bold yellow]", highlight=False)


def _report(result: "RunResult", console: "Console", *, seed: int, n_boot: int,
            baseline: Optional[str] = None) -> Optional[Path]:
    """Write `<out>/report/` and `<out>/leaderboard.csv` from the store, print one
    sample answer and the leaderboard per culture and per task; the report folder,
    or None when the store holds no scores."""
    from cai_bench.errors import UserError
    from cai_bench.harness.declarations import late_declarations
    from cai_bench.reports.terminal import (
        print_comparison,
        print_deltas,
        print_leaderboard,
        print_sample,
        print_task_leaderboard,
    )
    from cai_bench.reports.writer import DEFAULT_FORMATS, prepare, write_files

    try:  # older rows in the store get today's declarations, in memory
        data = prepare(result.store_url, baseline=baseline, formats=DEFAULT_FORMATS, seed=seed, n_boot=n_boot,
                       late=late_declarations(result.store_url))
    except UserError:
        console.print("[yellow]no scores in the store: nothing to rank (are all scorers unavailable?)[/yellow]")
        return None
    print_sample(data.samples, console)
    report_dir = write_files(data, result.out_dir, DEFAULT_FORMATS, seed=seed, n_boot=n_boot)
    print_leaderboard(data.board, console, data.validity, scales=data.scales,
                          culture_validity=data.culture_validity)
    print_task_leaderboard(data.task_board, console)
    print_deltas(data.deltas, data.baseline, console)
    print_comparison(data.extras, console)
    return report_dir
