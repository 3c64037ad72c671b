"""`cai-bench train sft|dpo RECIPE` and `cai-bench train recipes`: thin wrappers over cai_bench.training."""

from __future__ import annotations

from typing import List, Optional

import typer
from rich.markup import escape

from cai_bench.cli._app import app
from cai_bench.cli._options import THREADS, use_threads
from cai_bench.console import console

train_app = typer.Typer(
    help="Fine-tune checkpoints on CAI data: QLoRA SFT, then DPO (TRL + PEFT + bitsandbytes).",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")

_RECIPE = typer.Argument(..., help="Recipe YAML path or built-in name (see `cai-bench train recipes`).")
_SET = typer.Option(None, "--set", help="Override a recipe key: key=value (value parsed as YAML). Repeatable.")
_RESUME = typer.Option(False, "--resume", help="Continue from the last checkpoint-N in output_dir.")
_MERGE = typer.Option(False, "--merge", help="Save the adapter merged into the base (adapter kept in output_dir/adapter).")
_OUT = typer.Option(None, "--output-dir", "-o", help="Shortcut for --set output_dir=DIR.")


_ACCEL = typer.Option(None, "--accelerate-config", help="Train in several processes through `accelerate launch` "
                      "with this config: a file or a built-in name (multi_gpu, deepspeed_zero3, cpu_ddp).")
_NPROC = typer.Option(None, "--num-processes", min=1, help="Processes for `accelerate launch` (GPUs; CPU "
                      "processes with gloo where there is none). Alone: plain DDP.")


def _run(stage: str, recipe: str, overrides: Optional[List[str]], resume: bool, merge: bool, output_dir: Optional[str],
         accelerate_config: Optional[str] = None, num_processes: Optional[int] = None,
         threads: Optional[int] = None) -> None:
    import os

    from cai_bench.errors import UserError
    from cai_bench.training import load_recipe, train
    from cai_bench.training.launch import in_launched_rank, launch

    use_threads(threads)
    sets = list(overrides or [])
    if output_dir:
        sets.append(f"output_dir={output_dir}")
    rec = load_recipe(recipe, sets)  # a bad recipe fails here, before any process starts
    if (accelerate_config or num_processes) and not in_launched_rank():
        args = ["train", stage, recipe, *[a for s in sets for a in ("--set", s)]]
        args += ["--resume"] * resume + ["--merge"] * merge + (["--threads", str(threads)] if threads else [])
        code = launch(args, config=accelerate_config, num_processes=num_processes)
        if code != 0:
            raise UserError(f"train {stage}: accelerate launch failed (exit {code}); the ranks' errors are above")
        return
    result = train(stage, rec, resume=resume, merge=merge, recipe_source=recipe)  # type: ignore[arg-type]
    if int(os.environ.get("RANK", 0)) != 0:
        return
    m = result.metrics
    shown = {k: m[k] for k in ("global_step", "train_loss", "final_loss", "rewards/margins", "rewards/accuracies") if k in m}
    console.print(f"[bold green]{stage} done[/bold green]: {escape(str(result.output_dir))}")
    console.print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    console.print(f"  evaluate it with: cai-bench run --checkpoint {escape(str(result.output_dir))}")


@train_app.command("sft")
def sft(recipe: str = _RECIPE, set_: Optional[List[str]] = _SET, resume: bool = _RESUME, merge: bool = _MERGE,
        output_dir: Optional[str] = _OUT, accelerate_config: Optional[str] = _ACCEL,
        num_processes: Optional[int] = _NPROC, threads: Optional[int] = THREADS) -> None:
    """Supervised fine-tuning (QLoRA) on the `messages` of the data sets in the recipe's dataset_mixer."""
    _run("sft", recipe, set_, resume, merge, output_dir, accelerate_config, num_processes, threads)


@train_app.command("dpo")
def dpo(recipe: str = _RECIPE, set_: Optional[List[str]] = _SET, resume: bool = _RESUME, merge: bool = _MERGE,
        output_dir: Optional[str] = _OUT, accelerate_config: Optional[str] = _ACCEL,
        num_processes: Optional[int] = _NPROC, threads: Optional[int] = THREADS) -> None:
    """DPO on prompt/chosen/rejected pairs, starting from model_name_or_path (e.g. an SFT output dir)."""
    _run("dpo", recipe, set_, resume, merge, output_dir, accelerate_config, num_processes, threads)


@train_app.command("recipes")
def recipes() -> None:
    """List the built-in recipes."""
    from cai_bench.console import Col, fitted_table, print_table
    from cai_bench.training import list_recipes, load_recipe

    rows = []
    for name in list_recipes():
        r = load_recipe(name)
        rows.append([name, r.stage or "", r.model_name_or_path, "GPU" if r.gpu_recipe else "CPU ok", r.description])
    cols = [Col("name", keep=True), Col("stage", keep=True), Col("model", keep=True), Col("hardware", keep=True),
            Col("description", min_text=20)]
    print_table(fitted_table(cols, rows))
