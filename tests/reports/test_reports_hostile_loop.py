"""Model text and names in the files a pipeline's report writes: `{{`/`}}` kept in
samples.html, a `|` or a newline in a culture name does not break a Markdown table,
and no raw control character reaches the terminal, leaderboard.md or the CSVs."""

from __future__ import annotations

import io
import sqlite3

from rich.console import Console
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.reports.loop import LoopReport
from cai_bench.reports.markdown import render_loop_markdown
from cai_bench.reports.terminal import print_loop_verdicts
from cai_bench.results.loops import LoopRecord

CULTURE = "Z|A\nnew line \x1b[2J"


def _stats(x: float) -> dict:
    return {"mean": x, "lo": x, "hi": x}


def _loop() -> LoopReport:
    record = LoopRecord(loop_id="l1", title="t|itle\x1b[31m", fingerprints={"base": "a", "sft": "b", "dpo": "c"},
                        specs={"base": "x", "sft": "y", "dpo": "z"}, eval_task="t", tasks=["t"])
    delta = {"delta": 0.1, "lo": 0.0, "hi": 0.2, "p": 0.5, "verdict": "no significant change"}
    row = {"task": "t|k", "culture": CULTURE, "metric": "m\n|x", "n": 3, "base": _stats(0.1), "sft": _stats(0.2),
           "dpo": _stats(0.3), "sft_vs_base": delta, "dpo_vs_sft": delta, "dpo_vs_base": delta,
           "verdict": "no significant change"}
    return LoopReport(record, [row], guards=[], warnings=["w\x1b[2J"], no_verdict=["nv\x1b[2J"])


def test_loop_markdown_rows_stay_rows_and_the_terminal_sees_no_escape() -> None:
    md = render_loop_markdown([_loop()])
    assert "\x1b" not in md
    table = [ln for ln in md.splitlines() if ln.startswith("| ") and "t\\|k" in ln]
    assert len(table) == 1  # one line: the newline became a space, the pipes are escaped
    cells = table[0].replace("\\|", "").strip("|").split("|")
    assert len(cells) == 11
    buf = io.StringIO()
    print_loop_verdicts([_loop()], Console(file=buf, width=300, force_terminal=False))
    assert "\x1b" not in buf.getvalue() and "\\x1b" in buf.getvalue()


def test_report_files_keep_braces_and_hide_control_characters(store, tmp_path) -> None:
    db = store.removeprefix("sqlite:///")
    con = sqlite3.connect(db)
    with con:
        con.execute("update generations set response = '{{x}} }} {{' || response")
        con.execute("update tasks set culture = ? where culture = 'ZA'", (CULTURE,))
    con.close()
    res = CliRunner().invoke(app, ["report", "--store", store, "--out", str(tmp_path / "o"), "--n-boot", "20"],
                             env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output
    report = tmp_path / "o" / "report"
    assert "{{x}} }} {{" in (report / "samples.html").read_text()  # not collapsed to { }
    for name in ("leaderboard.md", "tasks_leaderboard.csv"):
        assert "\x1b" not in (report / name).read_text(), name
    assert "\x1b" not in (tmp_path / "o" / "leaderboard.csv").read_text()
