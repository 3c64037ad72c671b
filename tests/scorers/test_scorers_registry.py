"""Declarative scorers: `@scorer` registration, metric declarations, lazy loading in
the base class, entry-point plugins, `scorers list`, `score --scorer-config`, and a
third-party scorer going through `run` into the report without any other file
knowing its name (tests/scorers/plugin/cai_toy_scorer.py is the whole plugin)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.harness import scorers as reg
from cai_bench.harness.scorers import MetricSpec, Scorer, ScoreInput, ScoreRow, build_scorer, scorer

PLUGIN = Path(__file__).resolve().parent / "plugin"
ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "cai-bench"
CAI_BENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cai_bench"]


@pytest.fixture()
def toy(monkeypatch):
    """The plugin module imported from a test: its decorator registers `toy`."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    import cai_toy_scorer

    yield cai_toy_scorer.ToyScorer
    reg.SCORERS.pop("toy", None)
    reg.registry._sources.pop("toy", None)
    sys.modules.pop("cai_toy_scorer", None)


def _plugin_env(tmp_path: Path) -> dict[str, str]:
    """A `cai-bench` subprocess that sees the plugin as an installed distribution:
    its module on the path and a dist-info whose entry_points.txt names it."""
    site = tmp_path / "site"
    info = site / "cai_toy_scorer-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cai-toy-scorer\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[cai_bench.scorers]\ntoy = cai_toy_scorer:ToyScorer\n")
    env = dict(os.environ)
    env.update(PYTHONPATH=os.pathsep.join([str(site), str(PLUGIN), str(ROOT)]), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", TQDM_DISABLE="1", COLUMNS="200")
    return env


def test_decorator_registers_class_with_its_metrics(toy) -> None:
    assert reg.scorer_class("toy") is toy and toy.id == "toy"
    assert [(m.name, m.composite, m.role) for m in toy.metrics] == [("words", True, None),
                                                                    ("refused", False, "refusal")]
    assert "toy" in reg.scorer_ids() and reg.source_of("toy") == "cai_toy_scorer"
    result = CliRunner().invoke(app, ["scorers", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if "refused" in ln and "toy" in ln)
    assert "lower" in line and "no" in line and "refusal" in line
    assert "judge" in result.output and "similarity" in result.output  # the built-ins too


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        MetricSpec("m", "higher", role="vibes")
    with pytest.raises(ValueError, match="direction"):
        MetricSpec("m", "up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeat"):
        scorer("dup", metrics=[MetricSpec("m", "higher"), MetricSpec("m", "lower")])
    with pytest.raises(ValueError, match="already registered"):
        @scorer("judge", metrics=[MetricSpec("m", "higher")])
        class Impostor(Scorer):
            def score(self, batch: list[ScoreInput]) -> list[ScoreRow]:
                return []


def test_lazy_loading_lives_in_the_base_class(toy) -> None:
    s = build_scorer("toy")
    batch = [ScoreInput(key="a", prompt="q", response="I'm sorry, I cannot")]
    assert not s.is_loaded
    rows = s.score(batch)
    assert s.loads == 1 and s.is_loaded
    assert {r.metric: r.value for r in rows} == {"words": 4.0, "refused": 1.0}
    s.score(batch)
    assert s.loads == 1  # loaded once
    s.close()
    s.score(batch)
    assert s.loads == 2  # a closed scorer loads again on use
    s2 = build_scorer("toy")
    s2.load()
    s2.score(batch)
    assert s2.loads == 1  # an explicit load is not repeated


def test_score_with_scorer_config(toy, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": "1", "prompt": "q", "response": "one two three four five"}) + "\n"
                    + json.dumps({"id": "2", "prompt": "q", "response": "Nope, never."}) + "\n")
    cfg = tmp_path / "toy.yaml"
    cfg.write_text("toy:\n  cap: 2\n  refusal_words: [nope]\n")
    out = tmp_path / "scored.jsonl"
    result = CliRunner().invoke(app, ["score", str(rows), "--scorer", "toy", "--scorer-config", str(cfg),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["toy.words"] for r in got] == [2.0, 2.0] and [r["toy.refused"] for r in got] == [0.0, 1.0]
    # one scorer: the file may hold its settings directly; a setting it lacks is one line, exit 2
    cfg.write_text("cap: 1\n")
    assert CliRunner().invoke(app, ["score", str(rows), "-s", "toy", "--scorer-config", str(cfg)]).exit_code == 0
    cfg.write_text("toy:\n  colour: blue\n")
    bad = CliRunner().invoke(app, ["score", str(rows), "-s", "toy", "--scorer-config", str(cfg)])
    assert bad.exit_code == 2 and "colour" in bad.output
    cfg.write_text("nobody:\n  x: 1\n")
    bad = CliRunner().invoke(app, ["score", str(rows), "-s", "toy", "-s", "similarity", "--scorer-config", str(cfg)])
    assert bad.exit_code == 2 and "nobody" in bad.output


def test_entry_point_plugin_in_list_run_and_report(tmp_path: Path, smollm2_dir: Path) -> None:
    env = _plugin_env(tmp_path)
    listed = subprocess.run([*CAI_BENCH, "scorers", "list"], env=env, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "toy" in listed.stdout and "entry point cai_toy_scorer:ToyScorer (cai-toy-scorer)" in listed.stdout

    out = tmp_path / "out"
    run = subprocess.run([*CAI_BENCH, "run", "--checkpoint", str(smollm2_dir), "--task", "xstest", "--limit", "3",
                          "--scorer", "toy", "--max-new-tokens", "8", "--out", str(out)],
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Leaderboard" in run.stdout and "new: 3 responses, 3 scored" in run.stderr

    board = pd.read_csv(out / "leaderboard.csv")
    row = board[board["level"] == "culture"].iloc[0]
    assert {"toy.words", "toy.refused"} <= set(board.columns)
    # the composite is the words metric alone (0..200 declared): the refusal verdict stays out
    assert row["composite"] == pytest.approx(row["toy.words"] / 200.0)
    md = (out / "report" / "leaderboard.md").read_text()
    assert "scorer verdict (toy.refused)" in md  # xstest asks for refusal rates; toy's metric declares the role
    page = (out / "report" / "index.html").read_text()
    assert "toy.refused are reported but not in the composite" in page
