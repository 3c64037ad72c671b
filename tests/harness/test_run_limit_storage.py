"""`run --limit N` stores only the N prompts it uses: the same stratified sample as
before (same ids, same identity hashes, so stored answers are reused), a larger N
extends it, an edited prompt is answered anew, and the report still counts the
whole task per principle. Finding one task loads no other task's prompts."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.harness.sample import sample_task
from cai_bench.tasks import BUILTIN_DIR, load_task, task_identities

ROOT = Path(__file__).resolve().parents[2]
N = 3000


def _big_task(home: Path) -> Path:
    """A user task of N prompts (cai_south_africa's, repeated with new ids)."""
    folder = home / "tasks" / "big"
    folder.mkdir(parents=True)
    src = [json.loads(x) for x in (BUILTIN_DIR / "cai_south_africa" / "prompts.jsonl").read_text().splitlines()]
    with (folder / "prompts.jsonl").open("w") as f:
        for i in range(N):
            rec = {**src[i % len(src)], "id": f"{src[i % len(src)]['id']}-{i}"}
            rec["prompt"] += f" (variant {i})"
            f.write(json.dumps(rec) + "\n")
    yaml = (BUILTIN_DIR / "cai_south_africa" / "task.yaml").read_text()
    (folder / "task.yaml").write_text(yaml.replace("id: cai_south_africa", "id: big"))
    return folder


def _run(out: Path, limit: int) -> str:
    res = CliRunner().invoke(app, ["run", "-c", "openai:m", "-t", "big", "-n", str(limit), "-s", "similarity",
                                   "--no-report", "-o", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_limit_stores_only_the_sampled_prompts_with_unchanged_identities(tmp_path, loopback, home, monkeypatch):
    loopback.chat_text = lambda body: "A short answer."
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    folder = _big_task(home)
    task = load_task("big")
    want = sample_task(task, 5, seed=0).prompt_ids  # today's stratified sample
    ids = task_identities(task)
    out = tmp_path / "out"
    assert "new: 5 responses" in _run(out, 5)
    con = sqlite3.connect(out / "results.sqlite")
    rows = con.execute("select prompt_id, input_hash, content_hash, current from prompts order by prompt_id").fetchall()
    assert rows == sorted((p, ids[p].input_hash, ids[p].content_hash, 1) for p in want)  # 5 rows, not 3000
    assert con.execute("select n_prompts from tasks").fetchone() == (N,)
    assert sorted(r[0] for r in con.execute("select prompt_id from generations")) == sorted(want)
    con.close()

    out8 = _run(out, 8)  # a larger N extends the sample: the 5 stored answers are reused
    assert "reused from store: 5 responses" in out8 and "new: 3 responses" in out8
    want8 = sample_task(task, 8, seed=0).prompt_ids
    con = sqlite3.connect(out / "results.sqlite")
    assert sorted(r[0] for r in con.execute("select prompt_id from prompts where current = 1")) == sorted(want8)
    con.close()

    # editing a stored prompt: answered anew, its old version no longer current (nor reported)
    lines = (folder / "prompts.jsonl").read_text().splitlines()
    index = next(i for i, x in enumerate(lines) if json.loads(x)["id"] == want[0])
    rec = json.loads(lines[index])
    rec["prompt"] = "An edited question."
    lines[index] = json.dumps(rec)
    (folder / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    assert "new: 1 responses" in _run(out, 5)
    con = sqlite3.connect(out / "results.sqlite")
    versions = con.execute("select prompt, current from prompts where prompt_id = ? order by current",
                           (want[0],)).fetchall()
    assert [c for _, c in versions] == [0, 1] and versions[1][0] == "An edited question."
    assert con.execute("select count(*) from prompts where current = 1").fetchone() == (8,)
    con.close()

    from cai_bench.results import load_results_with_extras

    frame, extras = load_results_with_extras(f"sqlite:///{out / 'results.sqlite'}")
    assert frame["prompt_id"].nunique() == 8
    cov = extras.principle_coverage  # the whole task per principle, not the stored sample
    assert sum(c["of"] for c in cov) == N and sum(c["n"] for c in cov) == 8
    assert len(cov) == len(sample_task(task, None).per_principle)


def test_finding_one_task_reads_no_other_tasks_prompts(home):
    """A user task whose prompts file would block anyone reading it (a FIFO): `tasks show`
    of another task must not open it (before: every task's prompts were loaded)."""
    folder = home / "tasks" / "blocking"
    folder.mkdir(parents=True)
    yaml = (BUILTIN_DIR / "cai_south_africa" / "task.yaml").read_text()
    (folder / "task.yaml").write_text(yaml.replace("id: cai_south_africa", "id: blocking"))
    os.mkfifo(folder / "prompts.jsonl")
    shutil.copytree(BUILTIN_DIR / "cai_romania", home / "tasks" / "ro_copy")
    (home / "tasks" / "ro_copy" / "task.yaml").write_text(
        (BUILTIN_DIR / "cai_romania" / "task.yaml").read_text().replace("id: cai_romania", "id: ro_copy"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CAI_BENCH_HOME": str(home)}
    for tid in ("cai_romania", "ro_copy"):
        res = subprocess.run([sys.executable, "-m", "cai_bench", "tasks", "show", tid], env=env, capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0 and tid in res.stdout, res.stderr[-2000:]
