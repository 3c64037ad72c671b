"""SIGTERM handled like Ctrl-C while a command runs. A scheduler, `kill` or a
container stop sends SIGTERM, whose default ends the process at once: no
`finally` runs, so a `run` stays `running` in the store until the liveness
reaper notices. Raised as an exception instead, the same clean-up as Ctrl-C
runs (the run marked `interrupted`, finished work kept) and the command exits
143 (128 + SIGTERM), as a shell reports a process ended by that signal."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from cai_bench.console import err_console


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is; a KeyboardInterrupt so every
    handler of Ctrl-C (the runner's `interrupted` status, a journal's summary) runs."""

    signum = signal.SIGTERM


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` inside the block and exit 143 with one line
    when it ends the command. Main thread only (Python installs signal handlers
    there alone); the previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except Terminated:
        err_console.print("[yellow]interrupted[/yellow] (SIGTERM); finished work is kept, re-run to continue")
        raise typer.Exit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
