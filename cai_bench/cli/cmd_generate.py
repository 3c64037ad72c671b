"""`cai-bench generate` (CAI critique -> revision data) and `cai-bench tasks synthesize`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from cai_bench.cli._app import app
from cai_bench.cli._options import THREADS, use_threads
from cai_bench.console import console, err_console, make_progress
from cai_bench.defaults import CHAT, GENERATION, SYNTHESIS


ENGINE_HELP = ("Engine for a local --model: hf (in-process transformers) or vllm (a vLLM server, "
               "structured outputs; docs/scale.md).")
VLLM_PYTHON_HELP = "Engine vllm: the python that has vLLM (default: $CAI_BENCH_VLLM_PYTHON, else this one)."


def _engine_settings(engine: str, vllm_python: Optional[str]) -> dict:
    from cai_bench.errors import UserError
    from cai_bench.models.vllm_server import VllmSettings

    if engine not in ("hf", "vllm"):
        raise UserError(f"--engine {engine!r}: expected hf or vllm")
    return {"engine": engine, "vllm": VllmSettings(python=vllm_python)}


@app.command("generate")
def generate_cmd(
    constitution: str = typer.Option(..., "--constitution", "-c", help="Constitution id or YAML file."),
    prompts: str = typer.Option(..., "--prompts", "-p", help="Task id/dir, or a prompts file (.jsonl/.json/.txt)."),
    model: str = typer.Option(..., "--model", "-m", help="Checkpoint spec: bundled:NAME, hf:ORG/NAME, DIR, openai:MODEL, ollama:MODEL, "
                             "or KIND:NAME of a registered backend (cai-bench models list)."),
    selection: str = typer.Option(GENERATION.selection, "--selection", help="Principle selection: random or contextual."),
    n: Optional[int] = typer.Option(None, "--n", min=1, help="Use only the first N prompts."),
    seed: int = typer.Option(GENERATION.seed, "--seed", help="Seed for principle choice, sampling and the split."),
    top_k: int = typer.Option(GENERATION.top_k, "--top-k", min=1, help="Contextual: draw among the K most similar principles."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output dir (default ./cai-data/<constitution>)."),
    few_shot: bool = typer.Option(True, "--few-shot/--no-few-shot", help="Prepend the constitution's few-shot chats."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1,
                                                 help="Default: the prompts task's own (256 for a prompts file)."),
    temperature: float = typer.Option(GENERATION.temperature, "--temperature", min=0.0, help="0 = greedy."),
    top_p: float = typer.Option(GENERATION.top_p, "--top-p"),
    batch_size: int = typer.Option(CHAT.batch_size, "--batch-size", min=1, help="Prompts per batch (HF) / per chunk."),
    concurrency: int = typer.Option(CHAT.concurrency, "--concurrency", min=1, help="Parallel requests (OpenAI/Ollama)."),
    ascii_only: bool = typer.Option(False, "--ascii", help="Fold output text to ASCII."),
    revision_suffix: Optional[str] = typer.Option(None, "--revision-suffix", help="Text appended to each revision request."),
    keep_truncated: bool = typer.Option(False, "--keep-truncated", help="Keep revisions cut off at the token limit."),
    test_size: float = typer.Option(GENERATION.test_size, "--test-size", min=0.0, max=0.9),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Override OPENAI_BASE_URL / OLLAMA_HOST."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar=None, help="Override OPENAI_API_KEY."),
    timeout: float = typer.Option(CHAT.timeout, "--timeout", min=0.1, help="Seconds per request to a served model."),
    max_attempts: int = typer.Option(CHAT.max_attempts, "--max-attempts", min=1, help="Calls per request (408/429/5xx/timeouts are retried)."),
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Upload the splits to this hub dataset repo."),
    engine: str = typer.Option("hf", "--engine", help=ENGINE_HELP),
    vllm_python: Optional[str] = typer.Option(None, "--vllm-python", help=VLLM_PYTHON_HELP),
    threads: Optional[int] = THREADS,
) -> None:
    """Generate CAI data: initial response -> critique -> revision, cleaned, split for SFT and DPO."""
    from cai_bench.errors import UserError
    from cai_bench.generation import GenerateConfig, generate, push_to_hub as push

    use_threads(threads)

    if selection not in ("random", "contextual"):
        raise UserError(f"--selection {selection!r}: expected random or contextual")
    cfg = GenerateConfig(
        constitution=constitution, prompts=prompts, model=model,
        out=out or Path("cai-data") / Path(constitution).stem, selection=selection, n=n, seed=seed, top_k=top_k,
        few_shot=few_shot, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
        batch_size=batch_size, concurrency=concurrency, ascii=ascii_only, keep_truncated=keep_truncated,
        test_size=test_size, base_url=base_url, api_key=api_key, timeout=timeout, max_attempts=max_attempts,
        **_engine_settings(engine, vllm_python),
        **({"revision_suffix": revision_suffix} if revision_suffix is not None else {}),
    )
    progress = make_progress()
    bar: list = []  # started on the first report, after the inputs were read and checked

    def on_progress(done: int, total: int) -> None:
        if not bar:
            progress.start()
            bar.append(progress.add_task("generating (model calls: 3 per prompt)", total=total))
        progress.update(bar[0], completed=done, total=total)

    try:
        result = generate(cfg, on_progress=on_progress)
    finally:
        if bar:
            progress.stop()
    _summary(result)
    if push_to_hub:
        push(result.out, push_to_hub)
        console.print(f"pushed to https://huggingface.co/datasets/{push_to_hub}")


def _summary(result) -> None:
    from cai_bench.console import Col, fitted_table, print_table

    rows = [["prompts", str(result.prompts)], ["generated now / reused", f"{result.generated_now} / {result.reused}"]]
    rows += [[f"cleaned: {rule}", str(count)] for rule, count in result.cleaned.items()]
    rows += [[f"dropped: {reason}", str(count)] for reason, count in result.dropped.items()]
    if result.failed:
        rows.append(["failed (see errors.jsonl; a re-run retries them)", str(result.failed)])
    rows += [["kept", str(result.kept)], ["train / test", f"{result.splits['train']} / {result.splits['test']}"]]
    cols = [Col("what", min_text=24), Col("count", keep=True, justify="right")]
    print_table(fitted_table(cols, rows, title=f"CAI data in {result.out}"))


def _register_synthesize() -> None:
    """Add `synthesize` to the tasks group (owned by cmd_tasks)."""
    try:
        from cai_bench.cli.cmd_tasks import tasks_app
    except ImportError:  # the tasks group is not there yet
        return

    @tasks_app.command("synthesize")
    def synthesize_cmd(
        task_id: str = typer.Argument(..., help="Id of the new task ([a-z0-9_]+); one this command wrote before "
                                      "is continued (only principles still short are asked)."),
        constitution: str = typer.Option(..., "--constitution", "-c", help="Constitution id or YAML file."),
        model: str = typer.Option(..., "--model", "-m", help="Checkpoint spec of the writer model."),
        per_principle: int = typer.Option(SYNTHESIS.per_principle, "--per-principle", min=1,
                                          help="Prompts per principle."),
        max_new_tokens: int = typer.Option(SYNTHESIS.max_new_tokens, "--max-new-tokens", min=16),
        temperature: float = typer.Option(SYNTHESIS.temperature, "--temperature", min=0.0),
        seed: int = typer.Option(SYNTHESIS.seed, "--seed"),
        retries: int = typer.Option(SYNTHESIS.retries, "--retries", min=0, help="Extra attempts per principle when output is invalid."),
        culture: Optional[str] = typer.Option(None, "--culture", help="Default: the constitution's culture."),
        dest: Optional[Path] = typer.Option(None, "--dest", help="Tasks root (default: $CAI_BENCH_HOME/tasks)."),
        batch_size: int = typer.Option(CHAT.batch_size, "--batch-size", min=1),
        concurrency: int = typer.Option(CHAT.concurrency, "--concurrency", min=1),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="Override OPENAI_BASE_URL / OLLAMA_HOST."),
        api_key: Optional[str] = typer.Option(None, "--api-key", help="Override OPENAI_API_KEY."),
        timeout: float = typer.Option(CHAT.timeout, "--timeout", min=0.1, help="Seconds per request to a served model."),
        max_attempts: int = typer.Option(CHAT.max_attempts, "--max-attempts", min=1, help="Calls per request (408/429/5xx/timeouts are retried)."),
        engine: str = typer.Option("hf", "--engine", help=ENGINE_HELP),
        vllm_python: Optional[str] = typer.Option(None, "--vllm-python", help=VLLM_PYTHON_HELP),
        threads: Optional[int] = THREADS,
    ) -> None:
        """Write a new red-team task from a constitution with a model (prompt + correct/incorrect answers).

        Items are kept as they are made: an interrupted synthesis continues where it stopped
        when the same command is run again."""
        from cai_bench.generation import SynthesisConfig, synthesize_task
        from cai_bench.generation.synthesize import journal_path, kept_in_journal

        use_threads(threads)

        cfg = SynthesisConfig(task_id=task_id, constitution=constitution, model=model, per_principle=per_principle,
                              max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, retries=retries,
                              culture=culture, dest=dest, batch_size=batch_size, concurrency=concurrency,
                              base_url=base_url, api_key=api_key, timeout=timeout, max_attempts=max_attempts,
                              **_engine_settings(engine, vllm_python))
        progress = make_progress()
        bar: list = []

        def on_progress(done: int, total: int) -> None:
            if not bar:
                progress.start()
                bar.append(progress.add_task(f"synthesizing {task_id}", total=total))
            progress.update(bar[0], completed=done, total=total)

        try:
            result = synthesize_task(cfg, on_progress=on_progress)
        except KeyboardInterrupt as exc:
            if bar:
                progress.stop()
            items, principles = kept_in_journal(cfg)
            err_console.print(f"[yellow]interrupted[/yellow]: kept {items} prompts for {principles} principles in "
                              f"{escape(str(journal_path(cfg)))}; run the same command again to continue")
            raise typer.Exit(128 + getattr(exc, "signum", 2)) from None  # 130 Ctrl-C, 143 SIGTERM
        finally:
            if bar:
                progress.stop()
        console.print(f"wrote task [bold]{task_id}[/bold] to {escape(str(result.path))}: {result.prompts} prompts "
                      f"({f'{result.kept} kept from the earlier run, ' if result.kept else ''}"
                      f"{result.duplicates} duplicates and {result.invalid} invalid outputs dropped"
                      f"{f', {result.failed} failed requests (run the same command again to fill them)' if result.failed else ''})")
        for pid in result.short_principles:
            err_console.print(f"[yellow]warning:[/yellow] principle {escape(pid)}: fewer than {per_principle} prompts")


_register_synthesize()
