"""A full disk (simulated by a file size limit, RLIMIT_FSIZE, in the CLI's process)
while `run` writes the store or `report` writes its files: one line naming the file
and the reason, exit 2, no traceback; what was committed before stays, and the same
command run again with room finishes the work."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

from test_results_read_only import build

ROOT = Path(__file__).resolve().parents[2]
ANSWER = "A long answer that fills the store quickly. " * 60


def _cli(args: list[str], env: dict[str, str], limit: int | None) -> subprocess.CompletedProcess:
    def pre() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "cai_bench", *args], env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300, preexec_fn=pre)


def _one_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "Background on this error" not in r.stderr
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


def test_run_with_a_full_disk_is_one_line_and_keeps_what_was_committed(tmp_path, loopback, home):
    loopback.chat_text = lambda body: ANSWER
    env = {**os.environ, "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": loopback.openai_url}
    out = tmp_path / "out"
    args = ["run", "-c", "openai:m", "-t", "cai_south_africa", "-n", "20", "--chunk-size", "2", "-s", "similarity",
            "-o", str(out)]
    line = _one_line(_cli(args, env, limit=500_000))
    assert f"store {out / 'results.sqlite'}: cannot write: file size limit reached" in line, line
    db = out / "results.sqlite"
    con = sqlite3.connect(db)
    kept = con.execute("select generation_id, prompt_id, response from generations order by 1").fetchall()
    con.close()
    assert 0 < len(kept) < 20  # some chunks were committed before the disk filled
    again = _cli(args, env, limit=None)
    assert again.returncode == 0, again.stderr[-2000:]
    con = sqlite3.connect(db)
    rows = con.execute("select generation_id, prompt_id, response from generations order by 1").fetchall()
    con.close()
    assert rows[:len(kept)] == kept and len(rows) == 20  # nothing lost, nothing duplicated


def test_report_with_a_full_disk_is_one_line_naming_the_file(tmp_path):
    db = tmp_path / "results.sqlite"
    build(db)
    before = db.read_bytes()
    out = tmp_path / "o"
    line = _one_line(_cli(["report", "--store", str(db), "--out", str(out), "--no-show"], dict(os.environ),
                          limit=40_000))
    assert line.startswith(f"error: {out / 'report'}") and "cannot write: File too large" in line, line
    assert db.read_bytes() == before
    assert not list(out.rglob("*.tmp"))  # no half-written file left


def test_report_into_a_folder_it_cannot_write_is_one_line(tmp_path):
    """Another user's folder as --out: one line naming it (before: a PermissionError traceback)."""
    import shutil
    import tempfile

    from test_results_read_only import _as_other_user
    from test_results_read_only import _cli as _as

    prefix = _as_other_user()
    folder = Path(tempfile.mkdtemp(prefix="cai-out-"))
    folder.chmod(0o755)
    try:
        db = folder / "results.sqlite"
        build(db)
        db.chmod(0o644)
        out = folder / "o" if prefix else Path("/proc/cai-bench-out")  # not root: /proc refuses anyone
        r = _as(["report", "--store", str(db), "--out", str(out), "--no-show"], prefix, folder)
        line = _one_line(r)
        assert line.startswith(f"error: {out}") and ("Permission denied" in line or "No such file" in line), line
    finally:
        shutil.rmtree(folder)
