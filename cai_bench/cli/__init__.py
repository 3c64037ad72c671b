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
    """Console-script entry point."""
    sys.exit(app(args=argv, prog_name="cai-bench"))
