"""Shared Rich consoles, logging set-up, tables and progress for every command.

Output for the user goes to stdout (`console`); logs, warnings and progress go
to stderr (`err_console`) so that piped stdout stays clean. Output that is not a
terminal is written for the next program: tables at their full width (one line
per row: `grep`, `cut` and `awk` see whole cells) and progress as occasional
plain lines instead of redrawn bars.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Optional, Sequence

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cai_bench.escape import _CONTROL, visible  # noqa: F401 - visible is re-exported

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
    # messages to a log or pipe stay one line each (grep-able), as stdout's do
    err_console.soft_wrap = full_width(err_console)
    ours = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(level, logging.DEBUG)
    root = logging.getLogger("cai_bench")
    root.setLevel(ours)
    if not any(isinstance(h, (RichHandler, _LineHandler)) for h in root.handlers):
        handler: logging.Handler = (_LineHandler() if full_width(err_console) else
                                    RichHandler(console=err_console, show_path=False, rich_tracebacks=False))
        handler.addFilter(_visible_record)  # log lines quote model text and server errors
        root.addHandler(handler)
        root.propagate = False
    if level < 2:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        # libraries' tqdm bars: redrawn with \r, a log gets one endless line of frames; ours say the same
        os.environ.setdefault("TQDM_DISABLE", "1" if level < 0 or not err_console.is_terminal else "0")
        # matplotlib: "Could not save font_manager cache" on a full or read-only disk is not the user's business
        for name in ("lm_eval", "lm-eval", "datasets", "transformers", "sentence_transformers", "httpx", "bitsandbytes",
                     "matplotlib"):
            logging.getLogger(name).setLevel(logging.ERROR if level <= 0 else logging.INFO)
    # libraries' FutureWarnings speak to their callers (us), not to a user; -v shows them
    warnings.filterwarnings("ignore" if level <= 0 else "default", category=FutureWarning)


class _LineHandler(logging.Handler):
    """Log records for a log file or pipe: `[date time] LEVEL    message`, one line
    each (RichHandler wraps a long message into an indented column at 80)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)-8s %(message)s", datefmt="%x %X"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            err_console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


_LM_EVAL_GIT: dict[str, object] = {}


def quiet_lm_eval() -> None:
    """lm-eval runs `git describe` on every evaluate call and lets git print
    `fatal: not a git repository` when the working folder is not a checkout. At
    default verbosity the same lookup runs with git's stderr discarded; -v keeps
    lm-eval's own. Its tqdm bars are switched off where ours are plain lines
    (stderr not a terminal) or off (-q). Call before `simple_evaluate`."""
    import subprocess

    import lm_eval.evaluator as evaluator

    _quiet_lm_eval_bars(quiet() or (verbosity.level < 2 and not err_console.is_terminal))
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


def _quiet_lm_eval_bars(off: bool) -> None:
    """lm-eval's request bars pass `disable=False` to tqdm, so TQDM_DISABLE does not
    reach them; in a log each is one endless line of \\r-redrawn frames. Its loaded
    modules get a tqdm that is disabled when `off` (and their own one back otherwise)."""
    import sys

    for name in ("lm_eval.models.huggingface", "lm_eval.models.vllm_causallms", "lm_eval.api.model",
                 "lm_eval.api.task"):
        module = sys.modules.get(name)
        if module is None or not hasattr(module, "tqdm"):
            continue
        original = _LM_EVAL_GIT.setdefault(f"tqdm:{name}", module.tqdm)
        module.tqdm = _disabled(original) if off else original  # type: ignore[attr-defined]


def _disabled(bar: Callable[..., Any]) -> Callable[..., Any]:
    """`bar` with `disable=True` whatever the caller passes."""
    @functools.wraps(bar)
    def off(*args: Any, **kwargs: Any) -> Any:
        return bar(*args, **{**kwargs, "disable": True})

    return off


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
    """Progress on stderr; disabled under --quiet. A terminal gets Rich's redrawn bars
    (count, bar, ETA); a log or pipe gets `LineProgress`'s plain lines, since a
    redrawn bar there is a run of cut-off frames (`━━━ 32… 0:… eta 0:0…`)."""
    if not quiet() and not err_console.is_terminal:
        return LineProgress(err_console)
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


def _clock(seconds: float) -> str:
    """`0:01:05`, as Rich's elapsed and remaining columns write it."""
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _count(v: float) -> str:
    return f"{v:g}" if v != int(v) else str(int(v))


class LineProgress(Progress):
    """Progress for a log file or a pipe: one plain line per bar at most every
    `interval` seconds while it moves, and one when it completes, e.g.
    `generate sft x xstest: 16/32 (50%), 0:00:12 elapsed, eta 0:00:16`.
    The same object as Rich's bars (add_task, update, advance, start, stop), so
    every `make_progress` user gets it unchanged; nothing is redrawn."""

    def __init__(self, out: Console, *, interval: float = 10.0,
                 get_time: Optional[Callable[[], float]] = None) -> None:
        super().__init__(console=out, disable=True, get_time=get_time or time.monotonic)
        self.interval = interval
        self._printed: dict[TaskID, tuple[float, str]] = {}  # when each bar last printed, and what

    def add_task(self, description: str, start: bool = True, total: Optional[float] = 100.0, completed: int = 0,
                 visible: bool = True, **fields: Any) -> TaskID:
        task_id = super().add_task(description, start, total, completed, visible, **fields)
        self._printed[task_id] = (self.get_time(), "")  # the first line comes after `interval`, or at completion
        self._report(task_id)
        return task_id

    def update(self, task_id: TaskID, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        self._report(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._report(task_id)

    def stop(self) -> None:
        """Each bar's last state, where it moved since its last line (an interrupted or open-ended bar)."""
        for task_id in list(self._printed):
            self._report(task_id, closing=True)
        super().stop()

    def line(self, task_id: TaskID) -> str:
        """The bar as one plain line: `DESCRIPTION: DONE/TOTAL (PCT%), ELAPSED elapsed[, eta REMAINING]`."""
        task = self._tasks[task_id]
        desc = Text.from_markup(task.description).plain  # descriptions are markup (callers escape names)
        elapsed = f"{_clock(task.finished_time if task.finished_time is not None else task.elapsed or 0)} elapsed"
        if task.total is None:
            return f"{desc}: {_count(task.completed)} done, {elapsed}"
        text = f"{desc}: {_count(task.completed)}/{_count(task.total)} ({task.percentage:.0f}%), {elapsed}"
        remaining = None if task.completed >= task.total else task.time_remaining
        return text + (f", eta {_clock(remaining)}" if remaining is not None else "")

    def _report(self, task_id: TaskID, *, closing: bool = False) -> None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or not task.visible or task_id not in self._printed:
                return
            at, last = self._printed[task_id]
            done = task.total is not None and task.completed >= task.total
            count = f"{task.completed}/{task.total}"
            if last.endswith(f"|{count}") and (done or closing):
                return  # nothing new: the count did not move since the last line
            if not (done or closing or (self.get_time() - at >= self.interval and last != f"{task.description}|{count}")):
                return
            self._printed[task_id] = (self.get_time(), f"{task.description}|{count}")
            self.console.print(visible(self.line(task_id)), markup=False, highlight=False, soft_wrap=True)


@dataclass
class Col:
    """A column of a table: `keep` columns (ids, specs, numbers) are never
    truncated or wrapped; `text` columns wrap at spaces; `drop` orders which columns
    go first when the terminal is too narrow (1 first, 0 never)."""

    header: str
    keep: bool = False
    drop: int = 0
    min_text: int = 12  # narrowest a wrapped text column may get; words up to max(min_text, 24) stay whole
    justify: Literal["left", "right", "center"] = "left"


_UNBOUNDED = 100_000  # "as wide as the table wants": the width a table is measured at for a pipe


def full_width(out: Console) -> bool:
    """Whether `out` gets tables at their natural width: it is not a terminal and no
    COLUMNS in the environment asks for a width (a pipe, a file, a CI log)."""
    return not out.is_terminal and not os.environ.get("COLUMNS", "").strip().isdigit()


def fitted_table(cols: list[Col], rows: Sequence[Sequence["str | Text"]], *, width: int | None = None,
                 title: "str | Text | None" = None, show_lines: bool = False,
                 row_styles: Sequence[str | None] | None = None, out: Console | None = None) -> "Table":
    """The one way a Rich table is built for the CLI (print it with `print_table`): no
    `keep` cell is ever wrapped, folded or cut with an ellipsis, whatever the width.
    On a terminal it fits `width` (default: `out`'s) as far as the ids allow: text
    columns wrap at spaces, and columns with a `drop` rank are left out, least
    important first, until the rest fits; for a pipe nothing is dropped. Cells,
    headers and a str title are plain text (markup is not interpreted, control
    characters are shown); a Text cell keeps its style."""
    from rich.cells import cell_len
    from rich.table import Table

    out = out or console
    width = width or (_UNBOUNDED if full_width(out) else out.width)
    active = list(range(len(cols)))
    texts = [[c.plain if isinstance(c, Text) else str(c) for c in r] for r in rows]

    def longest(i: int, words: bool) -> int:
        cells = [r[i] for r in texts] + [cols[i].header]
        parts = [w for c in cells for w in c.split()] if words else cells
        return max([cell_len(p) for p in parts] + [1])

    def floor(i: int) -> int:
        """Narrowest width of column i: a keep column's widest cell, a text column's
        longest word (so words are not split), capped by its `min_text`."""
        c = cols[i]
        if c.keep:
            return longest(i, False)
        return max(min(longest(i, True), max(c.min_text, 24)), min(c.min_text, longest(i, False)))

    def need(idx: list[int]) -> int:
        return 1 + sum(floor(i) + 3 for i in idx)  # border, padding both sides and a separator per column

    for i in sorted((i for i in active if cols[i].drop), key=lambda i: cols[i].drop):
        if need(active) <= width:
            break
        active.remove(i)
    if isinstance(title, str):
        title = Text(visible(title), style="table.title")
    table = Table(title=title, title_justify="left", show_lines=show_lines)
    for i in active:
        c = cols[i]
        table.add_column(Text(visible(c.header), style="table.header"), no_wrap=c.keep, min_width=floor(i),
                         overflow="fold", justify=c.justify)
    for n, r in enumerate(rows):
        table.add_row(*(r[i] if isinstance(r[i], Text) else Text(visible(str(r[i]))) for i in active),
                      style=row_styles[n] if row_styles else None)
    return table


def print_table(table: "Table", out: Console | None = None) -> None:
    """Print `table` whole. To a pipe or file: at its natural width, one line per row,
    so `grep ID` finds an id and nothing is wrapped inside a word or cut with "…".
    On a terminal: at the terminal's width, or wider where the ids need more (the
    terminal then wraps the lines; the ids stay whole)."""
    from rich.measure import Measurement

    out = out or console
    if full_width(out):
        natural = Measurement.get(out, out.options.update_width(_UNBOUNDED), table).maximum
        if natural > out.width:
            table.width = natural
    elif table.width is None and (least := _least_width(table)) > out.width:
        table.width = least  # Rich would squeeze every column, the kept ones too, to fit a narrower one
    out.print(table, crop=False)


def _least_width(table: "Table") -> int:
    """The narrowest a table can be with every column at its `min_width`: cells,
    padding, and the borders of a boxed table (as `fitted_table` builds it)."""
    _, right, _, left = table.padding
    cols = table.columns
    borders = (len(cols) + 1 if table.show_edge else len(cols) - 1) if table.box else 0
    return sum((c.min_width or 1) + left + right for c in cols) + borders


def print_records(records: Sequence[Mapping[str, Any]], fmt: Literal["json", "csv"],
                  out: Console | None = None) -> None:
    """A listing for programs: JSON (a list of objects) or CSV (a header row, then one
    row per record; keys of the first record), every value whole, nothing else on
    stdout. JSON escapes the control characters a terminal would act on; CSV cells
    show them as `\\x1b` and get the spreadsheet-formula guard of `escape.csv_cell`."""
    out = out or console
    if fmt == "json":
        text = json.dumps(list(records), ensure_ascii=False, indent=2).translate(_JSON_INERT) + "\n"
    else:
        import csv
        import io

        buf = io.StringIO()
        keys = list(records[0]) if records else []
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(keys)
        for r in records:
            writer.writerow([_csv_value(r.get(k)) for k in keys])
        text = buf.getvalue()
    out.file.write(text)
    out.file.flush()


def _csv_value(v: Any) -> Any:
    from cai_bench.escape import csv_cell

    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return csv_cell(visible(v, lines=True)) if isinstance(v, str) else v


# Characters JSON leaves raw (DEL, C1 controls, bidi overrides) that a terminal acts on:
# written as \\u escapes, which only occur inside JSON strings and decode to the same text.
_JSON_INERT = {cp: f"\\u{cp:04x}" for cp in _CONTROL if cp >= 0x7f}


def safe(text: object, *, lines: bool = False) -> str:
    """`visible` and escaped for Rich markup: for user- or model-supplied text inside
    a markup string (`console.print(f"[bold]{safe(name)}[/bold]")`)."""
    from rich.markup import escape

    return escape(visible(text, lines=lines))
