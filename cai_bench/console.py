"""Shared Rich consoles, logging set-up and progress bars for every command.

Output for the user goes to stdout (`console`); logs, warnings and progress go
to stderr (`err_console`) so that piped stdout stays clean.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from rich.table import Table

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
        handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
        handler.addFilter(_visible_record)  # log lines quote model text and server errors
        root.addHandler(handler)
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


def _visible_record(record: logging.LogRecord) -> bool:
    """Make control characters in a log message visible (the record is formatted once, here)."""
    message = record.getMessage()
    shown = visible(message, lines=True)
    if shown != message:
        record.msg, record.args = shown, None
    return True


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


@dataclass
class Col:
    """A column of a listing: `keep` columns (ids, specs, numbers) are never
    truncated or wrapped; `text` columns wrap; `drop` orders which columns go
    first when the terminal is too narrow (1 first, 0 never)."""

    header: str
    keep: bool = False
    drop: int = 0
    min_text: int = 12  # narrowest a wrapped text column may get


def fitted_table(cols: list[Col], rows: list[list[str]], *, width: int | None = None, title: str | None = None,
                 show_lines: bool = False) -> "Table":
    """A Rich table that fits `width` (default: the console's) without truncating a
    `keep` cell: text columns wrap (folding long words), and columns with a `drop`
    rank are left out, least important first, until the rest fits. Cells are
    plain text (markup is not interpreted)."""
    from rich.table import Table
    from rich.text import Text

    width = width or console.width
    active = list(range(len(cols)))

    def longest(i: int, words: bool) -> int:
        cells = [str(r[i]) for r in rows]
        parts = [w for c in cells for w in c.split()] if words else cells
        return max([len(p) for p in parts] + [len(cols[i].header)])

    def floor(i: int) -> int:
        """Narrowest width of column i: a keep column's widest cell, a text column's
        longest word (so words are not split), capped by its `min_text`."""
        c = cols[i]
        return longest(i, False) if c.keep else max(min(longest(i, True), max(c.min_text, 24)), min(c.min_text, longest(i, False)))

    def need(idx: list[int]) -> int:
        return 1 + sum(floor(i) + 3 for i in idx)  # border, padding both sides and a separator per column

    for i in sorted((i for i in active if cols[i].drop), key=lambda i: cols[i].drop):
        if need(active) <= width:
            break
        active.remove(i)
    table = Table(title=title, title_justify="left", show_lines=show_lines)
    for i in active:
        c = cols[i]
        table.add_column(c.header, no_wrap=c.keep, min_width=floor(i), overflow="fold")
    for r in rows:
        table.add_row(*(Text(visible(str(r[i]))) for i in active))
    return table


_CONTROL = {i: f"\\x{i:02x}" for i in [*range(0x00, 0x20), 0x7f, *range(0x80, 0xa0)]}
_CONTROL.update({0x09: "\\t", 0x0a: "\\n", 0x0d: "\\r"})
_KEEP_LINES = {k: v for k, v in _CONTROL.items() if k not in (0x09, 0x0a)}
# Bidirectional overrides and isolates can reorder what a terminal shows.
for _cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)):
    _CONTROL[_cp] = _KEEP_LINES[_cp] = f"\\u{_cp:04x}"


def visible(text: object, *, lines: bool = False) -> str:
    """`text` with control characters made visible (`\\x1b`, `\\r`, `\\u202e`), so
    that model output, prompts and names cannot move the cursor, recolour or
    clear the terminal. `lines=True` keeps newlines and tabs (multi-line answers)."""
    return str(text).translate(_KEEP_LINES if lines else _CONTROL)


def safe(text: object, *, lines: bool = False) -> str:
    """`visible` and escaped for Rich markup: for user- or model-supplied text inside
    a markup string (`console.print(f"[bold]{safe(name)}[/bold]")`)."""
    from rich.markup import escape

    return escape(visible(text, lines=lines))
