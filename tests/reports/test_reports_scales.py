"""Issue 17.6: each metric on its own scale in the leaderboard, raw metrics before the
composite, and the normalisation stated next to the composite (and it reproduces it)."""

from __future__ import annotations

import re

import pandas as pd
from typer.testing import CliRunner

from cai_bench.cli import app


def _first_table_header(md: str) -> list[str]:
    line = next(ln for ln in md.splitlines() if ln.startswith("| rank |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_leaderboard_shows_own_scales_and_states_the_composite(store, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", "--out", str(out), "--store", store, "--n-boot", "50",
                                   "--format", "md,csv"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    md = (out / "report" / "leaderboard.md").read_text(encoding="utf-8")
    md = md.replace("\\(", "(").replace("\\)", ")")  # Markdown cells escape parentheses (shown as written)
    header = _first_table_header(md)
    assert header[:4] == ["rank", "checkpoint", "n", "coverage"] and header[-1] == "composite (0..1)"
    # † : not validated for this culture (docs/validity.md, "Per culture"); the scale follows
    assert "similarity.cosine † (-1..1, higher better)" in header
    assert "judge.adherence † (1..10, higher better)" in header
    assert any(h.startswith("moderation.max_score † (") and "in the data, lower better" in h for h in header)
    note = " ".join(md.split())
    assert "similarity.cosine (x+1)/2" in note and "judge.adherence (x-1)/9" in note
    assert "judge.refused shown, not in the composite" in note
    # the terminal shows the same note under the leaderboards
    assert "similarity.cosine (x+1)/2" in " ".join(res.output.split())

    # the stated mapping reproduces the composite from the raw metric means
    from cai_bench.reports.build import slug

    board = pd.read_csv(out / "report" / f"leaderboard_{slug('ZA')}.csv")
    scales = {"similarity.cosine": (-1.0, 1.0, False), "harmlessness.harmless": (0.0, 1.0, False),
              "judge.adherence": (1.0, 10.0, False)}
    m = re.search(r"moderation\.max_score 1-\(x-([\d.]+)\)/([\d.]+), range", note)
    assert m, note
    lo, span = float(m.group(1)), float(m.group(2))
    scales["moderation.max_score"] = (lo, lo + span, True)
    for r in board.to_dict("records"):
        mapped = []
        for key, (a, b, lower) in scales.items():
            if pd.notna(r.get(key)):
                v = (r[key] - a) / (b - a)
                mapped.append(1 - v if lower else v)
        assert abs(sum(mapped) / len(mapped) - r["composite"]) < 5e-3, (r["label"], mapped, r["composite"])
