"""Output that pipes: through a real pipe (stdout and stderr not terminals) tables are
written at full width, one line per row, so `grep` finds whole ids; listings print
json/csv for programs; progress is occasional plain lines on stderr. On a narrow
terminal ids are still never wrapped or cut."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from cai_bench.console import Col, LineProgress, fitted_table, print_table

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "scorers" / "plugin"
CAI_BENCH = [sys.executable, "-m", "cai_bench"]
LONG = ("smollm2-135m-instruct-cai-south-africa-qlora-sft-r16-lr2e-4",
        "smollm2-135m-instruct-cai-south-africa-qlora-dpo-beta0.1-from-sft")


def _env(**extra: str) -> dict[str, str]:
    """A child whose stdout and stderr are pipes, as from a user's shell: nobody set its width or tqdm."""
    unset = ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TQDM_DISABLE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", **extra)
    return env


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([*CAI_BENCH, *args], env=env or _env(), capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def test_piped_scorers_list_greps_whole_ids_and_never_cuts():
    """`cai-bench scorers list | grep similarity` finds the row: every scorer and metric
    id whole on its row's one line, descriptions unwrapped, no ellipsis."""
    from cai_bench.harness.scorers import scorer_class, scorer_ids

    out = _cli("scorers", "list").stdout
    lines = out.splitlines()
    assert "…" not in out
    for sid in scorer_ids():
        for m in scorer_class(sid).metrics:
            row = [ln for ln in lines if re.search(rf"│ {re.escape(sid)} +│ {re.escape(m.name)} +│", ln)]
            assert len(row) == 1, (sid, m.name, out)
            assert m.description in row[0]  # the whole description on the same line
    grep = [ln for ln in lines if "similarity" in ln]
    assert grep and "closer to the reference answers (cosine of MiniLM embeddings)" in grep[0]


def test_listings_as_json_and_csv_for_programs(tmp_path):
    from cai_bench.constitutions import list_constitutions
    from cai_bench.harness.scorers import scorer_class, scorer_ids
    from cai_bench.models import BUNDLED
    from cai_bench.tasks import list_tasks

    broken = tmp_path / "tasks" / "a_broken_task_whose_name_is_long_enough"
    broken.mkdir(parents=True)
    (broken / "task.yaml").write_text(f"id: {broken.name}\nconstitution: anthropic\n")  # no prompts file
    res = _cli("tasks", "list", "--tasks-dir", str(broken.parent), "--format", "json")
    tasks = json.loads(res.stdout)  # nothing but JSON on stdout: the warning goes to stderr, on one line
    assert re.search(rf"^\[.+\] WARNING +skipped task '{broken.name}': \S+prompts.jsonl: file not found$",
                     res.stderr, re.M), res.stderr
    assert [t["id"] for t in tasks] == [t.id for t in list_tasks()]
    assert {"id", "constitution", "culture", "kind", "prompts", "references", "location"} <= set(tasks[0])
    xstest = next(t for t in tasks if t["id"] == "xstest")
    assert xstest["kind"] == "generate_until" and isinstance(xstest["prompts"], int) and xstest["prompts"] > 0

    scorers = json.loads(_cli("scorers", "list", "--format", "json").stdout)
    assert [(r["scorer"], r["metric"]) for r in scorers] == [(s, m.name) for s in scorer_ids()
                                                             for m in scorer_class(s).metrics]
    sim = next(r for r in scorers if r["scorer"] == "similarity")
    assert (sim["lo"], sim["hi"], sim["composite"], sim["direction"]) == (-1.0, 1.0, True, "higher")

    rows = list(csv.DictReader(io.StringIO(_cli("constitutions", "list", "--format", "csv").stdout)))
    want = {c.id: c for c in list_constitutions()}
    assert [r["id"] for r in rows] == list(want)
    assert all(r["source"] == str(want[r["id"]].source) and int(r["principles"]) == len(want[r["id"]].principles)
               for r in rows)  # a long source is not cut with …

    models = json.loads(_cli("models", "list", "--format", "json").stdout)
    assert [m["spec"] for m in models if m["section"] == "bundled"] == [f"bundled:{n}" for n in BUNDLED]
    assert {(m["kind"], m["engine"]) for m in models if m["section"] == "backend"} >= {("hf", "hf"), ("openai", "any")}


def _long_label_store(path: Path) -> str:
    """Two adapters of one base whose labels differ only after 40 characters."""
    from cai_bench.harness.scorers import MetricSpec, ScoreRow
    from cai_bench.results import Store, Unit

    url = f"sqlite:///{path}"
    store = Store(url)
    run_id = store.start_run("{}", 0, "test")
    store.set_run_scorers(run_id, [{"id": "similarity", "config_hash": "h_sim", "available": True, "reason": ""}])
    store.upsert_task(task_id="cai_south_africa", constitution_id="south_africa", culture="ZA", n_prompts=3,
                      metadata={"principles": {"ubuntu": "Ubuntu"}, "analyses": []},
                      prompts=[{"prompt_id": f"p{i}", "prompt": f"Prompt {i}", "principle_id": "ubuntu",
                                "reference": f"Reference {i}"} for i in range(3)])
    store.upsert_scorer_metrics("similarity", "h_sim", [MetricSpec("similarity", "higher", -1.0, 1.0)], {})
    for k, label in enumerate(LONG):
        fp = f"fp_{k:08d}"
        store.upsert_checkpoint(run_id, fingerprint=fp, spec=f"/ckpt/{label}", kind="peft", label=label, metadata={})
        unit = Unit(fp, "cai_south_africa", "g1", ("p0", "p1", "p2"))
        store.insert_generations(run_id, unit, [(f"p{i}", f"Answer {i}", 0.1) for i in range(3)])
        pending, _ = store.pending_scores([unit], "similarity", "h_sim", 1)
        store.insert_scores(run_id, "similarity", "h_sim",
                            [(p.generation_id, ScoreRow.ok(str(p.generation_id), "similarity", 0.3 + 0.2 * k))
                             for p in pending])
    store.finish_run(run_id, "finished")
    store.close()
    return url


def test_piped_leaderboard_prints_long_checkpoint_labels_whole(tmp_path):
    url = _long_label_store(tmp_path / "results.sqlite")
    out = _cli("report", "--out", str(tmp_path / "out"), "--store", url, "--format", "csv",
               "--baseline", LONG[0]).stdout
    assert "…" not in out
    rows = [[c.strip() for c in ln.strip("│").split("│")] for ln in out.splitlines() if ln.startswith("│")]
    # the two adapters are told apart: one leaderboard row each, ranked, then the deltas against the first
    assert [r[1] for r in rows[:2]] == [LONG[1], LONG[0]], out
    assert [r[:2] for r in rows[2:4]] == [[LONG[1], "composite"], [LONG[1], "similarity.similarity"]], out
    assert f"Delta vs baseline {LONG[0]}: ZA" in out.splitlines()


def test_narrow_terminal_wraps_text_never_ids():
    """A 50-column terminal: the description wraps at spaces, the ids stay whole (the
    table is then wider than the terminal, which wraps the line rather than the id)."""
    buf = io.StringIO()
    term = Console(file=buf, width=50, force_terminal=True, color_system=None)
    cols = [Col("checkpoint", keep=True), Col("metric", keep=True), Col("note")]
    print_table(fitted_table(cols, [[LONG[1], "harmlessness.max_category_score", "a note with some words in it"]],
                             out=term), term)
    text = buf.getvalue()
    assert LONG[1] in text and "harmlessness.max_category_score" in text and "…" not in text
    assert sum("words" in ln or "some" in ln for ln in text.splitlines()) >= 1


def test_plain_progress_lines_every_interval_and_at_completion():
    now = [0.0]
    buf = io.StringIO()
    progress = LineProgress(Console(file=buf, width=40), interval=10.0, get_time=lambda: now[0])
    with progress:
        bar = progress.add_task("generate [bold]sft[/bold] x xstest", total=32)
        progress.advance(bar, 4)            # 0 s: too soon for a line
        now[0] = 12.0
        progress.advance(bar, 12)           # 12 s: a line
        now[0] = 15.0
        progress.advance(bar, 1)            # 3 s after the last line: none
        now[0] = 30.0
        progress.update(bar, completed=32)  # done: a line, whatever the time
        progress.update(bar, description="generate sft x xstest again")  # no news after completion
        open_ended = progress.add_task("synthesize prompts", total=None)
        progress.update(open_ended, completed=7)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "generate sft x xstest: 16/32 (50%), 0:00:12 elapsed, eta 0:00:16"  # Rich's speed: 12 in 12 s
    assert lines[1] == "generate sft x xstest: 32/32 (100%), 0:00:30 elapsed"
    assert lines[2] == "synthesize prompts: 7 done, 0:00:00 elapsed"  # at stop: its last state
    assert len(lines) == 3  # one line each, never wider than asked: no bar, no …


@pytest.fixture()
def toy_env(tmp_path) -> dict[str, str]:
    """A subprocess that sees tests/scorers/plugin as an installed scorer distribution."""
    info = tmp_path / "site" / "cai_toy_scorer-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cai-toy-scorer\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[cai_bench.scorers]\ntoy = cai_toy_scorer:ToyScorer\n")
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(info.parent), str(PLUGIN), str(ROOT)])
    return env


def test_progress_goes_to_stderr_as_plain_lines_when_piped(tmp_path, toy_env):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": f"r{i}", "prompt": "hi", "response": "sorry, no" if i % 2 else "hello"})
                            + "\n" for i in range(5)))
    res = _cli("score", str(rows), "--scorer", "toy", "--scorer", "moderation", env=toy_env)
    assert [json.loads(ln)["id"] for ln in res.stdout.splitlines()] == [f"r{i}" for i in range(5)]  # stdout: data only
    assert re.search(r"^score toy: 5/5 \(100%\), \d+:\d\d:\d\d elapsed$", res.stderr, re.M), res.stderr
    assert "━" not in res.stderr and "\r" not in res.stderr and "\x1b" not in res.stderr
    # a message longer than 80 columns stays one line in the log (moderation: no API key here)
    assert re.search(r"^scorer moderation unavailable: .{50,}$", res.stderr, re.M), res.stderr
