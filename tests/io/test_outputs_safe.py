"""Issue 13 section 5: nothing secret or hostile leaks into outputs."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.errors import UserError
from cai_bench.escape import csv_cell, csv_frame, md_text, plot_text
from cai_bench.reports.build import slug
from cai_bench.reports.tables import Table, to_markdown

runner = CliRunner()
NAMES = ["Ελλάδα", "日本", "South Africa", "South_Africa", "za", "ZA", "../etc/passwd", "a/b", "", "$x$"]


def test_slugs_unique_stable_and_safe() -> None:
    slugs = [slug(n) for n in NAMES]
    assert len(set(slugs)) == len(NAMES)
    assert len({s.lower() for s in slugs}) == len(NAMES)  # case-insensitive file systems too
    assert slugs == [slug(n) for n in NAMES]  # stable
    for s in slugs:
        assert re.fullmatch(r"[\w.-]+-[0-9a-f]{8}", s) and "/" not in s and ".." not in s.rsplit("-", 1)[0][:2]
    assert slug("South Africa").startswith("South_Africa-") and slug("Ελλάδα").startswith("Ελλάδα-")


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_formula_cells_neutralised(cell: str) -> None:
    inert = "'" + cell.replace("\r", "\\r")  # a carriage return is also made visible
    assert csv_cell(cell) == inert
    frame = csv_frame(pd.DataFrame({"label": [cell, "ok"], "value": [-0.5, 1.0]}))
    assert frame["label"].tolist() == [inert, "ok"] and frame["value"].tolist() == [-0.5, 1.0]


def test_control_characters_in_names_are_visible_in_csv_and_markdown() -> None:
    """`cat leaderboard.md` or `.csv` must not clear the screen: ESC, bidi overrides shown as text."""
    name = "tuned\x1b[2J\u202e"
    assert csv_cell(name) == "tuned\\x1b[2J\\u202e" and "\x1b" not in md_text(name)
    assert "\\x1b" in md_text(name) and "\u202e" not in md_text(name)


def test_markdown_cells_are_literal() -> None:
    hostile = "a|b\\c\n![img](http://evil/x.png) [link](http://evil) <script>"
    out = md_text(hostile)
    assert "\n" not in out and "|" not in out.replace("\\|", "") and "](" not in out
    assert "<script>" not in out and "\\\\c" in out
    table = to_markdown(Table(["checkpoint", "score"], [[(hostile, None), ("0.5", 0.5)]]))
    row = table.splitlines()[2]
    assert len(re.findall(r"(?<!\\)\|", row)) == 3  # the cell did not add columns


def test_plot_labels_keep_dollars_literal() -> None:
    from cai_bench.reports import plots

    assert plot_text("cost $5 vs $x$") == r"cost \$5 vs \$x\$"
    matrix = pd.DataFrame([[0.5, 0.7]], index=["model $a$ $"], columns=["$ZA", "RO$"])
    assert plots.heatmap(matrix)[:4] == b"\x89PNG"  # an unbalanced $ would raise in mathtext


def test_rich_markup_in_error_is_printed_literally() -> None:
    r = runner.invoke(app, ["constitutions", "show", "[bold red]x[/bold red]"], env={"COLUMNS": "300"})
    assert r.exit_code == 2 and "[bold red]x[/bold red]" in r.output


def test_cli_error_line_is_redacted(tmp_path: Path) -> None:
    url = "postgresql://bench:SECRETPW@127.0.0.1:9/cai?sslkey=KEY123"
    r = runner.invoke(app, ["report", "--store", url, "--out", str(tmp_path)], env={"COLUMNS": "300"})
    assert r.exit_code == 2 and "SECRETPW" not in r.output and "KEY123" not in r.output
    assert "postgresql://***@127.0.0.1:9/cai" in r.output


def test_store_redacts_before_writing(tmp_path: Path) -> None:
    from cai_bench.results import Store

    store = Store(f"sqlite:///{tmp_path / 'r.sqlite'}")
    run_id = store.start_run("{}", 0, "test")
    store.set_run_scorers(run_id, [{"id": "judge", "available": False,
                                    "reason": "cannot reach http://u:pw@judge.local/v1?api-key=K9"}])
    store.upsert_checkpoint(run_id, fingerprint="f", spec="openai:m", kind="openai", label="m",
                            metadata={"base_url": "https://user:SECRET@api.example/v1?api-key=K9"})
    store.close()
    con = sqlite3.connect(tmp_path / "r.sqlite")
    blob = json.dumps(con.execute("select scorers_json from runs").fetchall()) + \
        json.dumps(con.execute("select metadata_json from checkpoints").fetchall())
    con.close()
    assert "SECRET" not in blob and "K9" not in blob and ":pw@" not in blob
    assert "api.example/v1" in blob and "judge.local/v1" in blob


def test_trust_remote_code_only_by_flag(tmp_path: Path) -> None:
    from cai_bench.harness.config import load_config_file
    from cai_bench.trust import allow_remote_code, trust_remote_code

    cfg = tmp_path / "run.yaml"
    cfg.write_text("checkpoints: [openai:m]\ntasks: [cai_south_africa]\n"
                   "scorers: [{id: harmlessness, trust_remote_code: true}]\n")
    allow_remote_code(False)
    with pytest.raises(UserError, match=r"run\.yaml:3: scorers\.0\.trust_remote_code: .*--trust-remote-code"):
        load_config_file(cfg)
    assert trust_remote_code(False, "x") is False
    try:
        allow_remote_code(True)
        assert load_config_file(cfg).scorers[0].settings["trust_remote_code"] is True
        assert trust_remote_code(False, "x") is True  # the flag alone switches it on
    finally:
        allow_remote_code(False)
    r = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "300"})
    assert "--trust-remote-code" in r.output
