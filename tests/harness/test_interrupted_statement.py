"""Ctrl-C that lands inside a store write (CI caught it once in the signal test; a loop
of claims interrupted at random moments hit it in 6 of the first 10): the run still
ends `interrupted` at once, not after the 60 s busy timeout with "database is locked"."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from cai_bench.harness.config import RunConfig
from cai_bench.harness.runner import run


def _interrupt_first_claim():  # noqa: ANN202
    """A Ctrl-C right after SQLite stepped the first claim (`UPDATE work_units ...
    RETURNING`), its row not yet read: the statement is live when the signal lands."""
    fired = []

    def hook(conn, cursor, statement, params, context, executemany) -> None:  # noqa: ANN001
        if not fired and statement.lstrip().upper().startswith("UPDATE WORK_UNITS") and "RETURNING" in statement:
            fired.append(statement)
            raise KeyboardInterrupt

    return hook, fired


def test_ctrl_c_inside_a_claim_marks_the_run_interrupted_at_once(tmp_path: Path, smollm2_dir: Path) -> None:
    hook, fired = _interrupt_first_claim()
    event.listen(Engine, "after_cursor_execute", hook)
    cfg = RunConfig(checkpoints=[str(smollm2_dir)], tasks=["cai_south_africa"], limit=2, scorers=["similarity"],
                    out=tmp_path / "out")
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            run(cfg)
    finally:
        event.remove(Engine, "after_cursor_execute", hook)
    assert fired, "the claim was never reached"
    assert time.monotonic() - started < 30  # the busy timeout is 60 s
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as db:
        assert db.execute("select status from runs").fetchall() == [("interrupted",)]
