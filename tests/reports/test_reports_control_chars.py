"""Issue 17.12: control characters from model output, prompts and names are shown
(`\\x1b`), never written to the terminal."""

from __future__ import annotations

import io
import json
import sqlite3

from rich.console import Console
from typer.testing import CliRunner

from cai_bench.cli import app

ESC = "\x1b[31mRED\x1b[2J"


def test_report_and_sample_show_control_characters(store, tmp_path):
    db = store.removeprefix("sqlite:///")
    con = sqlite3.connect(db)
    with con:
        con.execute("update checkpoints set label = ? where label = 'tuned'", (f"tuned{ESC}",))
        con.execute("update generations set response = ? || response", (ESC + "\r\u202e",))
        con.execute("update prompts set prompt = ? || prompt", (ESC,))
    con.close()
    res = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "o"), "--store", store, "--n-boot", "20",
                                   "--format", "md"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "tuned\\x1b[31mRED" in res.output

    from cai_bench.reports.terminal import print_sample
    from cai_bench.results import load_results

    buf = io.StringIO()
    print_sample(load_results(store), Console(file=buf, width=200, force_terminal=False))
    shown = buf.getvalue()
    assert "\x1b" not in shown and "\r" not in shown and "\u202e" not in shown
    assert "\\x1b[31mRED\\x1b[2J\\r\\u202e" in shown  # the answer, visibly
    assert "prompt: \\x1b[31mRED" in shown


def test_task_prompts_names_and_errors_show_control_characters(home, tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text(json.dumps({"prompt": f"Hello {ESC} there", "reference": "ok"}) + "\n")
    res = CliRunner().invoke(app, ["tasks", "new", "cai_esc", "--constitution", "south_africa", "--prompts",
                                   str(src), "--culture", f"ZA{ESC}"])
    assert res.exit_code == 0, res.output
    for args in (["tasks", "show", "cai_esc"], ["tasks", "list"]):
        out = CliRunner().invoke(app, args, env={"COLUMNS": "250"}).output
        assert "\x1b" not in out and "ZA\\x1b[31mRED" in out, args
    shown = CliRunner().invoke(app, ["tasks", "show", "cai_esc"]).output
    assert "Hello \\x1b[31mRED\\x1b[2J there" in shown
    bad = CliRunner().invoke(app, ["tasks", "show", f"nope{ESC}"])
    assert bad.exit_code == 2 and "\x1b" not in bad.output and "nope\\x1b[31mRED" in bad.output
