"""`cai-bench run` end to end on the real SmolLM2: leaderboard, reuse on re-run
(no generation model loaded), new generations when settings change, a PEFT
adapter as checkpoint, and a SIGKILL mid-generation followed by a re-run."""

from __future__ import annotations

import json
import os
import signal
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app

_SCRIPT = Path(sys.executable).parent / "cai-bench"
CAI_BENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cai_bench"]


def _rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _run(*args: str) -> str:
    res = CliRunner().invoke(app, ["run", *args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_run_leaderboard_then_rerun_reuses_everything(tmp_path: Path, smollm2_dir: Path) -> None:
    out = tmp_path / "out"
    args = ["--checkpoint", str(smollm2_dir), "--task", "cai_south_africa", "--limit", "2", "--scorer",
            "similarity", "--max-new-tokens", "16", "--out", str(out)]
    first = _run(*args, "--threads", "1")
    assert "torch threads" not in first  # the user's own choice is not announced, but kept with the run
    (stored,) = _rows(out / "results.sqlite", "select config_json from runs")[0]
    threads = json.loads(stored)["runtime"]["threads"]
    assert (threads["threads"], threads["source"], threads["others_busy"]) == (1, "--threads", None)
    assert "Leaderboard" in first and "ZA" in first
    assert "By task" in first and "cai_south_africa" in first  # per (task, checkpoint) as well
    assert "sample answer:" in first and "answer:" in first  # a real response is shown
    assert "generation models loaded: 1" in first
    assert (out / "leaderboard.csv").is_file() and (out / "report" / "index.html").is_file()
    db = out / "results.sqlite"
    assert _rows(db, "select count(*) from generations") == [(2,)]
    assert _rows(db, "select count(*), sum(status='ok') from scores") == [(2, 2)]

    again = _run(*args)
    assert "generation models loaded: 0" in again
    assert "reused from store: 2 responses, 2 scored responses; new: 0 responses, 0 scored" in again
    assert _rows(db, "select count(*) from generations") == [(2,)]
    assert _rows(db, "select count(*) from scores") == [(2,)]
    assert _rows(db, "select count(*), count(distinct status) from runs") == [(2, 1)]

    changed = _run(*args[:-2], "--out", str(out), "--max-new-tokens", "8", "--limit", "1", "--no-report")
    assert "new: 1 responses, 1 scored" in changed
    assert _rows(db, "select count(distinct gen_hash) from generations") == [(2,)]

    before = _rows(db, "select max(generation_id) from generations")[0][0]
    forced = _run(*args, "--force", "--no-report")
    assert "new: 2 responses, 2 scored" in forced and "reused from store: 0 responses" in forced
    assert _rows(db, "select count(*) from generations") == [(3,)]  # replaced, not duplicated
    assert _rows(db, "select min(generation_id) > ? from generations where gen_hash = "
                     "(select gen_hash from generations order by generation_id desc limit 1)".replace("?", str(before))
                 ) == [(1,)]
    assert _rows(db, "select count(*) from scores") == [(3,)]


def test_peft_adapter_dir_is_a_checkpoint(tmp_path: Path, smollm2_dir: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))
    adapter = tmp_path / "sft" / "checkpoint-1"
    model.save_pretrained(adapter)
    del model, base
    assert (adapter / "adapter_config.json").is_file()

    out = tmp_path / "out"
    cfg = tmp_path / "run.yaml"  # a glob over adapter dirs plus the base model, scorer with settings
    cfg.write_text(
        f"checkpoints: ['sft/checkpoint-*', '{smollm2_dir}']\n"
        "tasks: [cai_south_africa, cai_romania]\n"
        "scorers: [{id: similarity, batch_size: 4}]\n"
        "limit: 1\n"
        "generation: {max_new_tokens: 8}\n"
    )
    text = _run(str(cfg), "--out", str(out))
    assert "new: 4 responses, 4 scored" in text and "generation models loaded: 2" in text
    db = out / "results.sqlite"
    assert sorted(_rows(db, "select kind, label from checkpoints")) == [
        ("hf", "smollm2-135m-instruct"), ("peft", "sft/checkpoint-1")]
    assert _rows(db, "select count(*) from run_checkpoints") == [(2,)]
    board = (out / "leaderboard.csv").read_text()
    assert "sft/checkpoint-1" in board and "smollm2-135m-instruct" in board

    # two checkpoints x two cultures: `report` rebuilds every file from the store, twice the same bytes
    import hashlib

    def digests() -> dict[str, str]:
        return {str(p.relative_to(out / "report")): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted((out / "report").rglob("*")) if p.is_file()}

    def report() -> dict[str, str]:
        res = CliRunner().invoke(app, ["report", "--out", str(out), "--baseline", "smollm2-135m-instruct",
                                       "--format", "html,md,csv,parquet", "--no-show"])
        assert res.exit_code == 0, res.output + repr(res.exception)
        return digests()

    shutil.rmtree(out / "report")
    first = report()
    assert report() == first
    from cai_bench.reports.build import slug

    assert {"index.html", "leaderboard.md", f"leaderboard_{slug('RO')}.csv", f"leaderboard_{slug('ZA')}.csv", "samples.parquet",
            "tasks_leaderboard.csv", "plots/heatmap.png"} <= set(first)
    page = (out / "report" / "index.html").read_text()
    assert "sft/checkpoint-1" in page and "Leaderboard: RO" in page and "Leaderboard: ZA" in page


def _eight_prompt_run(model: Path, out: Path) -> list[str]:
    """8 prompts committed two at a time: a signal lands between chunks."""
    return [*CAI_BENCH, "run", "--checkpoint", str(model), "--task", "cai_south_africa", "--limit", "8",
            "--chunk-size", "2", "--batch-size", "2", "--max-new-tokens", "16", "--scorer", "similarity",
            "--out", str(out), "--no-report"]


def _first_rows(db: Path, proc: subprocess.Popen) -> int:
    """Stored generations once the first chunk is committed (or the process ended, or 300 s passed)."""
    n = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                n = _rows(db, "select count(*) from generations")[0][0]
            except sqlite3.OperationalError:  # tables not created yet
                n = 0
            if n >= 1:
                break
        time.sleep(0.05)
    return n


def test_sigkill_mid_generation_then_rerun_stores_each_once(tmp_path: Path, smollm2_dir: Path,
                                                             cli_env: dict[str, str]) -> None:
    out = tmp_path / "out"
    db = out / "results.sqlite"
    cmd = _eight_prompt_run(smollm2_dir, out)
    proc = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        n = _first_rows(db, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert 1 <= n < 8, f"kill did not land mid-generation (n={n}): {proc.stderr.read().decode()[-2000:]}"
    killed = _rows(db, "select count(*) from generations")[0][0]
    assert killed % 2 == 0  # whole chunks only

    res = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"reused from store: {killed} responses" in res.stderr
    per_key = _rows(db, """
        select g.fingerprint, g.task_id, g.prompt_id, s.metric, count(*)
        from generations g join scores s on s.generation_id = g.generation_id
        group by g.fingerprint, g.task_id, g.prompt_id, s.metric""")
    assert len(per_key) == 8 and {row[-1] for row in per_key} == {1}
    assert _rows(db, "select count(*), count(distinct prompt_id) from generations") == [(8, 8)]
    statuses = _rows(db, "select status from runs order by started_at")
    assert statuses == [("interrupted",), ("finished",)]  # the re-run's open found the killed run dead


@pytest.mark.slow
def test_done_when_command(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """The issue's acceptance command, as typed (bundled spec, task defaults: 256 new tokens)."""
    res = subprocess.run([*CAI_BENCH, "run", "--checkpoint", "bundled:smollm2-135m-instruct", "--task",
                          "cai_south_africa", "--limit", "8", "--scorer", "similarity"],
                         cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Leaderboard" in res.stdout and (tmp_path / "cai-bench-out" / "leaderboard.csv").is_file()
    assert "By task" in res.stdout  # the (task, checkpoint) level too


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_generation_marks_run_interrupted(tmp_path: Path, smollm2_dir: Path,
                                                      cli_env: dict[str, str], sig: signal.Signals) -> None:
    """Ctrl-C (or a scheduler's SIGTERM) mid-run: exit 130 / 143, the run is `interrupted`, not `failed`,
    and `report --list-configs` says so."""
    out = tmp_path / "out"
    db = out / "results.sqlite"
    cmd = _eight_prompt_run(smollm2_dir, out)
    # a background job started without job control inherits SIGINT ignored: give the child Python's default
    proc = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        n = _first_rows(db, proc)
        os.kill(proc.pid, sig)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode()
    assert 1 <= n < 8, f"signal did not land mid-generation (n={n}): {err[-2000:]}"
    assert rc == 128 + sig, err[-2000:]
    assert "interrupted" in err
    assert _rows(db, "select status from runs") == [("interrupted",)]
    res = CliRunner().invoke(app, ["report", "--out", str(out), "--list-configs"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "interrupted" in res.output and "failed" not in res.output
