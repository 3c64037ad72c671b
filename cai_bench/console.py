"""Shared Rich consoles, logging set-up and progress bars for every command.

Output for the user goes to stdout (`console`); logs, warnings and progress go
to stderr (`err_console`) so that piped stdout stays clean.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(soft_wrap=True)
err_console = Console(stderr=True)


@dataclass
class Verbosity:
    level: int = 0  # -1 quiet, 0 normal, 1 -v, 2 -vv


verbosity = Verbosity()


def configure(level: int) -> None:
    """Apply -v/--quiet: our logger level, library chatter, progress bars."""
    verbosity.level = level
    ours = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(level, logging.DEBUG)
    root = logging.getLogger("cai_bench")
    root.setLevel(ours)
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(console=err_console, show_path=False, rich_tracebacks=False))
        root.propagate = False
    if level < 2:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1" if level < 0 else "0")
        for name in ("lm_eval", "lm-eval", "datasets", "transformers", "sentence_transformers", "httpx", "bitsandbytes"):
            logging.getLogger(name).setLevel(logging.ERROR if level <= 0 else logging.INFO)


def quiet() -> bool:
    return verbosity.level < 0


def make_progress(*, transient: bool = False) -> Progress:
    """A Rich progress view with count, bar and ETA; disabled under --quiet."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=quiet(),
    )
