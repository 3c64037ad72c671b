"""The Typer `app` every `cmd_*` module adds its commands to, and the root
options (-v, -q, --version). A `UserError` raised below a command becomes one red
line on stderr and its exit code, never a traceback."""

from __future__ import annotations

import errno
from typing import Optional

import click
import typer
from cai_bench.console import safe as escape  # markup-escaped, control characters made visible
from typer.core import TyperGroup

from cai_bench import __version__
from cai_bench.console import configure, err_console
from cai_bench.cli._signals import sigterm_as_interrupt
from cai_bench.errors import UserError
from cai_bench.redact import redact_text


class _CaiBenchGroup(TyperGroup):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            with sigterm_as_interrupt():  # SIGTERM: the clean-up of Ctrl-C, then exit 143
                return super().invoke(ctx)
        except UserError as exc:
            err_console.print(f"[bold red]error:[/bold red] {escape(redact_text(exc.message))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            line = _os_error_line(exc)
            if line is None:
                raise
            err_console.print(f"[bold red]error:[/bold red] {escape(redact_text(line))}", soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/yellow]; finished work is kept, re-run to continue")
            raise typer.Exit(130) from None


# What a user fixes on their side (room on the disk, a quota, a file size limit, a
# read-only mount, permissions): one line naming the file, not a traceback.
_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def _os_error_line(exc: OSError) -> str | None:
    """`FILE: reason` for an OSError the environment caused (a full disk while writing a
    report file), with what holds: what was stored stays. None for others."""
    if exc.errno not in _ENVIRONMENT_ERRNOS or exc.filename is None:
        return None
    if exc.errno in (errno.EACCES, errno.EPERM):  # reading or writing: the file and the reason say which
        return f"{exc.filename}: {exc.strerror or exc}"
    hint = {errno.EFBIG: " (a file size limit: ulimit -f)", errno.EDQUOT: " (disk quota)"}.get(exc.errno, "")
    return (f"{exc.filename}: cannot write: {exc.strerror or exc}{hint}; "
            "nothing already stored is lost; run the same command again once it can write")


app = typer.Typer(
    name="cai-bench",
    cls=_CaiBenchGroup,
    help="Constitutional AI benchmark harness: generate CAI data, train, evaluate and report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cai-bench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "-v", "--verbose", count=True, help="More logging (-vv for debug)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Only errors; no progress bars."),
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Constitutional AI benchmark harness."""
    configure(-1 if quiet else verbose)
