"""Issue 17.8: listings at 80 columns never truncate ids (other columns wrap or are
left out), and 17.12: control characters in names are shown, not sent to the terminal."""

from __future__ import annotations

from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.console import Col, fitted_table, visible


def _at(width: int, *args: str) -> str:
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": str(width)})
    assert res.exit_code == 0, res.output
    return res.output


def test_listings_keep_ids_whole_at_80_columns():
    from cai_bench.constitutions import list_constitutions, load_constitution
    from cai_bench.harness.scorers import scorer_class, scorer_ids
    from cai_bench.models import BUNDLED
    from cai_bench.tasks import list_tasks

    cases = {
        ("scorers", "list"): [*scorer_ids(), *(m.name for s in scorer_ids() for m in scorer_class(s).metrics)],
        ("models", "list"): [f"bundled:{n}" for n in BUNDLED],
        ("constitutions", "list"): [c.id for c in list_constitutions()],
        ("constitutions", "show", "romania"): [p.id for p in load_constitution("romania").principles],
        ("tasks", "list"): [t.id for t in list_tasks()],
    }
    for args, ids in cases.items():
        out = _at(80, *args)
        table_lines = [ln for ln in out.splitlines() if ln.startswith(("│", "┃", "┏", "└"))]
        assert table_lines and max(len(ln) for ln in table_lines) <= 80, args
        cells = {c.strip() for ln in table_lines for c in ln.strip("│┃").split("│")}
        for i in ids:
            assert i in cells, (args, i)
        assert not any("…" in c for c in cells if c.replace("…", "") and any(c.replace("…", "") in i for i in ids))
    wide = _at(250, "tasks", "list")
    assert "location" in wide and "references" in wide  # nothing dropped when there is room


def test_fitted_table_drops_least_important_first_and_shows_controls():
    from io import StringIO

    from rich.console import Console

    cols = [Col("id", keep=True), Col("note", drop=2), Col("path", drop=1)]
    rows = [["an_id_that_is_quite_long_indeed", "some words here", "/a/very/long/path/that/takes/room"]]
    out = StringIO()
    Console(file=out, width=60).print(fitted_table(cols, rows, width=60))
    text = out.getvalue()
    assert "an_id_that_is_quite_long_indeed" in text and "path" not in text and "note" in text
    assert visible("red\x1b[31m\r\u202e") == "red\\x1b[31m\\r\\u202e"
    assert visible("a\nb\tc", lines=True) == "a\nb\tc" and visible("a\nb") == "a\\nb"
    out = StringIO()
    Console(file=out, width=60).print(fitted_table([Col("id", keep=True)], [["x\x1b[2Jy"]]))
    assert "\x1b" not in out.getvalue() and "x\\x1b[2Jy" in out.getvalue()
