"""Shared Rich consoles, logging set-up and progress bars for every command.

Output for the user goes to stdout (`console`); logs, warnings and progress go
to stderr (`err_console`) so that piped stdout stays clean.
"""

from __future__ import annotations

import logging
import os
import warnings
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
    # libraries' FutureWarnings speak to their callers (us), not to a user; -v shows them
    warnings.filterwarnings("ignore" if level <= 0 else "default", category=FutureWarning)


_LM_EVAL_GIT: dict[str, object] = {}


def quiet_lm_eval() -> None:
    """lm-eval runs `git describe` on every evaluate call and lets git print
    `fatal: not a git repository` when the working folder is not a checkout. At
    default verbosity the same lookup runs with git's stderr discarded; -v keeps
    lm-eval's own. Call before `simple_evaluate`."""
    import subprocess

    import lm_eval.evaluator as evaluator

    original = _LM_EVAL_GIT.setdefault("original", evaluator.get_git_commit_hash)
    if verbosity.level >= 1:
        evaluator.get_git_commit_hash = original
        return

    def git_commit_hash() -> str | None:
        try:
            return subprocess.check_output(["git", "describe", "--always"],  # noqa: S607 - as lm-eval does
                                           stderr=subprocess.DEVNULL).strip().decode()
        except (subprocess.CalledProcessError, FileNotFoundError, OSError):
            from lm_eval.loggers.utils import get_commit_from_path

            return get_commit_from_path(os.getcwd())

    evaluator.get_git_commit_hash = git_commit_hash


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
