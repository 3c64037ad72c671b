"""Options several commands share, defined once so the flag and its help read the
same everywhere (Typer copies an option's settings per command)."""

from __future__ import annotations

from enum import Enum

import typer

STORE = typer.Option(None, "--store", help="Results store: SQLAlchemy URL or SQLite path "
                                           "(default: sqlite:///<out>/results.sqlite).")
TRUST_REMOTE_CODE = typer.Option(False, "--trust-remote-code",
                                 help="Let scorer models run their repository's own code (never switched on "
                                      "by a config file alone).")
SCORER_CONFIG = typer.Option(None, "--scorer-config",
                             help="YAML/JSON scorer settings: {scorer: {setting: value}}, or {setting: value} "
                                  "with one scorer (see `cai-bench scorers list` and docs/scorers.md).")

THREADS = typer.Option(None, "--threads", min=1,
                       help="torch threads on the CPU (default: measured before each long phase: the cores other "
                            "processes leave free, at most one per core; OMP_NUM_THREADS also sets it).")


def use_threads(threads: "int | None") -> None:
    """--threads for this command (None: chosen by measuring the CPU; `cai_bench.cpu_threads`)."""
    from cai_bench.cpu_threads import set_explicit

    set_explicit(threads)


class ListFormat(str, Enum):
    """How a listing is printed: a table for people, JSON or CSV for programs."""

    table = "table"
    json = "json"
    csv = "csv"


LIST_FORMAT = typer.Option(ListFormat.table, "--format", case_sensitive=False,
                           help="table (for people), or json / csv for programs: every row, every id whole, "
                                "nothing else on stdout.")
