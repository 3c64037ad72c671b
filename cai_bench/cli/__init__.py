"""The `cai-bench` command: a thin Typer app. Each command group lives in its own
module here and only parses arguments, calls the owning subpackage, and prints.

A `UserError` raised anywhere below becomes one red line on stderr and its exit
code (2 by default), never a traceback.
"""

from __future__ import annotations

import sys
from typing import Optional

from cai_bench.cli._app import app

__all__ = ["app", "main"]


def _register() -> None:
    # Each module adds its commands to `app`; import order is the --help order.
    from cai_bench.cli import (  # noqa: F401
        cmd_constitutions,
        cmd_data,
        cmd_experiment,
        cmd_generate,
        cmd_models,
        cmd_pipeline,
        cmd_report,
        cmd_run,
        cmd_score,
        cmd_scorers,
        cmd_status,
        cmd_tasks,
        cmd_train,
    )


_register()


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point. A bad flag or flag value is one line naming the
    flag and the fix (`--help`), exit 2, like every other bad input; Click's usage box
    is kept for a command line that names no command."""
    from typer import Abort, Exit

    try:  # this Typer carries its own copy of Click
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
    except ImportError:  # a Typer on the click package
        from click.exceptions import NoArgsIsHelpError, UsageError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, prog_name="cai-bench", standalone_mode=False)
    except NoArgsIsHelpError:
        sys.exit(app(args=args, prog_name="cai-bench"))
    except UsageError as exc:
        from cai_bench.console import err_console, visible

        where = exc.ctx.command_path if exc.ctx is not None else "cai-bench"
        err_console.print(f"error: {visible(exc.format_message())} (see `{visible(where)} --help`)",
                          markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exit as exc:
        sys.exit(exc.exit_code)
    except Abort:
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
