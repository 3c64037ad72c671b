"""write_report and `cai-bench report` end to end on a store built through the Store API."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import markupsafe
import pandas as pd
import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.errors import UserError
from cai_bench.harness.scorers import MetricSpec, ScoreRow
from cai_bench.results import Store, Unit
from cai_bench.reports import write_report
from cai_bench.reports.build import slug


ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"index.html", "samples.html", "leaderboard.md", "samples.parquet", "plots/heatmap.png", "tasks_leaderboard.csv", "validity.csv",
            *(f"leaderboard_{slug(c)}.csv" for c in ("RO", "ZA", "xstest")),
            *(f"plots/{kind}_{slug(c)}.png" for c in ("RO", "ZA", "xstest") for kind in ("means", "distributions"))}


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_write_report_all_files_and_deterministic(store, tmp_path, hostile):
    out = tmp_path / "out"
    report = write_report(store, out, baseline="base", n_boot=200)
    assert report == out / "report"
    first = _digests(report)
    assert set(first) == EXPECTED
    combined = pd.read_csv(out / "leaderboard.csv")
    assert set(combined["level"]) == {"culture", "task"}
    tasks = combined[combined["level"] == "task"]
    assert sorted(zip(tasks["group"], tasks["culture"]))[::2] == [
        ("cai_romania", "RO"), ("cai_south_africa", "ZA"), ("xstest", "xstest")]  # two checkpoints each
    # every (task, checkpoint) row says its culture and carries n, a CI and a rank
    assert tasks["culture"].notna().all() and (tasks["n"] > 0).all() and tasks["rank"].notna().all()
    assert {c for c in combined.columns if c.endswith(".lo")}
    report2 = write_report(store, out, baseline="base", n_boot=200)
    assert _digests(report2) == first
    other = write_report(store, tmp_path / "other", baseline="base", n_boot=200)  # fresh folder, same bytes
    assert _digests(other) == first

    page = (report / "index.html").read_text()
    assert hostile not in page and "<script>alert(1)" not in page
    assert str(markupsafe.escape(hostile)) in page  # shown as text among the worst samples
    assert page.count("<script>") == 1  # the page's own sorting script only
    assert "data:image/png;base64," in page and f'href="#culture-{slug("ZA")}"' in page
    assert "Delta vs baseline" in page and "helpfulness" in page and "Starling" in page
    md = (report / "leaderboard.md").read_text()
    assert "## ZA" in md and "Unavailable scorers" in md and "Refusal rates (XSTest-style)" in md

    samples = pd.read_parquet(report / "samples.parquet")
    assert len(samples) == 2 * 3 * 6  # checkpoints x tasks x prompts
    assert {"composite", "similarity.cosine", "principle_title"} <= set(samples.columns)
    csv = pd.read_csv(report / f"leaderboard_{slug('ZA')}.csv")
    assert list(csv["label"]) == ["tuned", "base"]  # best composite first
    # 6 prompts do not separate them (paired bootstrap, Holm): they share rank 1, and the CSV says how sure
    assert list(csv["rank"]) == [1, 1 if csv["rank_p"].iloc[1] >= 0.05 else 2]


def test_formats_and_bad_baseline(store, tmp_path):
    report = write_report(store, tmp_path, formats=["csv"], n_boot=50)
    assert not (report / "index.html").exists() and (report / f"leaderboard_{slug('ZA')}.csv").exists()
    with pytest.raises(UserError, match="--baseline 'nobody'"):
        write_report(store, tmp_path, baseline="nobody", n_boot=50)
    with pytest.raises(UserError, match="unknown format"):
        write_report(store, tmp_path, formats=["pdf"])


def test_empty_store_is_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    Store(url).close()
    with pytest.raises(UserError, match="holds no scores"):
        write_report(url, tmp_path)
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "holds no scores" in result.output
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_cli_report(store, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--store", store, "--baseline",
                                      "bundled:smollm2-135m-instruct", "--format", "html,md,csv,parquet",
                                      "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    assert "Leaderboard: ZA" in result.output and "report written to" in result.output
    assert (out / "report" / "index.html").is_file()


def test_report_imports_no_torch(store, tmp_path):
    code = ("import sys, cai_bench.reports, cai_bench.cli.cmd_report\n"
            "from cai_bench.reports import load_results, leaderboard, write_report\n"
            "import cai_bench.reports.html, cai_bench.reports.plots\n"
            "bad = [m for m in ('torch', 'transformers', 'lm_eval', 'trl') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
    # the real console script, with an import audit hook that fails on torch
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(
        "import sys\n"
        "def _hook(event, args):\n"
        "    if event == 'import' and args[0].split('.')[0] in ('torch', 'transformers'):\n"
        "        raise SystemExit('imported ' + args[0])\n"
        "sys.addaudithook(_hook)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(probe), str(ROOT)])}  # this checkout's cai_bench
    exe = Path(sys.executable).with_name("cai-bench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cai_bench"]
    proc = subprocess.run([*cmd, "report", "--out", str(tmp_path / "sub"), "--store", store, "--n-boot", "50",
                           "--format", "md,csv"], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # another process, same store: same bytes
    here = write_report(store, tmp_path / "here", formats=["md", "csv"], n_boot=50)
    assert _digests(here) == _digests(tmp_path / "sub" / "report")


def test_report_when_every_score_failed(tmp_path):
    """One checkpoint, one task, nothing but error/na rows: the report still renders."""
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    store = Store(url)
    run_id = store.start_run("{}", 0, "test")
    store.upsert_checkpoint(run_id, fingerprint="fp1", spec="hf:x/y", kind="hf", label="y", metadata={})
    store.upsert_task(task_id="t", constitution_id="c", culture="Côte d'Ivoire/FR", n_prompts=1, metadata={},
                      prompts=[{"prompt_id": "p", "prompt": "q", "principle_id": "a", "reference": None,
                                "category": None, "expect": None}])
    unit = Unit("fp1", "t", "g", ("p",))
    store.insert_generations(run_id, unit, [("p", "r", None)])
    (gen,), _ = store.pending_scores([unit], "moderation", "h", 1)
    store.upsert_scorer_metrics("moderation", "h", [MetricSpec("flagged", "lower", 0.0, 1.0)], {})
    store.insert_scores(run_id, "moderation", "h", [(gen.generation_id, ScoreRow.failed("k", "flagged", "HTTP 429"))])
    store.insert_scores(run_id, "similarity", "h", [(gen.generation_id, ScoreRow.na("k", "cosine", "no reference"))])
    store.close()
    report = write_report(url, tmp_path, n_boot=10)
    assert [p.name for p in report.glob("leaderboard_*.csv")] == ["leaderboard_" + slug("Côte d'Ivoire/FR") + ".csv"]
    page = (report / "index.html").read_text()
    assert "Leaderboard: Côte d&#39;Ivoire/FR" in page
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    board = board[board["level"] == "culture"]
    assert board["coverage"].tolist() == [0.0] and board["rank"].isna().all()  # no composite, no rank
