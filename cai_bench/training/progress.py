"""A Rich progress bar with the latest loss, in place of transformers' tqdm bar and log printer."""

from __future__ import annotations

import logging
import math

from transformers import TrainerCallback

from cai_bench.console import err_console, make_progress, quiet

log = logging.getLogger("cai_bench.training")
_SHOWN = ("loss", "eval_loss", "rewards/margins", "rewards/accuracies", "learning_rate", "grad_norm")


def _fmt(logs: dict) -> str:
    parts = []
    for k in _SHOWN:
        v = logs.get(k)
        if isinstance(v, (int, float)):
            parts.append(f"{k}={v:.4g}")
    return " ".join(parts)


class RichProgressCallback(TrainerCallback):
    """Shows step/total with ETA and prints one line per logging step (loss, rewards)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.progress = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:  # several ranks: one progress view
            return
        self.progress = make_progress()
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        line = _fmt(logs)
        if not line:
            return
        loss = logs.get("loss")
        if isinstance(loss, float) and not math.isfinite(loss):
            log.warning("step %d: loss is %s", state.global_step, loss)
        if self.progress is not None and "loss" in logs:
            self.progress.update(self.task, description=f"{self.label} loss={logs['loss']:.4g}")
        if not quiet() and state.is_world_process_zero:
            err_console.print(f"[dim]step {state.global_step}/{state.max_steps}[/dim] {line}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
