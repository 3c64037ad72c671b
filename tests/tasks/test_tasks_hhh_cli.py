"""hhh_alignment from the CLI: `tasks list` (found or a note, never a download), `tasks show`,
`tasks export ... --out DIR` (an lm-eval multiple_choice folder lm-eval itself loads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.tasks import hhh

SAMPLE = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "hhh_sample.jsonl"  # 8 real items


@pytest.fixture()
def no_hhh(home, tmp_path, monkeypatch):
    """No HHH data anywhere: no env path, an empty shared data folder, an empty cache."""
    monkeypatch.delenv(hhh.ENV_PATH, raising=False)
    monkeypatch.setenv(hhh.SHARED_ENV, str(tmp_path / "empty-shared"))
    return home


def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def _invoke(*args: str, **env: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250", **env})


def test_list_shows_both_views_with_kind_count_and_source(no_hhh):
    r = _invoke("tasks", "list", "--hhh-path", str(SAMPLE))
    assert r.exit_code == 0, r.output
    lines = {ln.split()[1]: ln for ln in r.output.splitlines() if ln.startswith("│ hhh_alignment")}
    assert set(lines) == {"hhh_alignment", "hhh_alignment_response"}
    for ln in lines.values():
        assert "multiple_choice (log-likelihood)" in ln and " 8 " in ln  # the kind its task.yaml declares
    assert str(SAMPLE) in _flat(r.output) and "cai_south_africa" in r.output  # the generation tasks still listed


def test_list_without_the_data_says_how_to_get_it(no_hhh):
    r = _invoke("tasks", "list")
    assert r.exit_code == 0, r.output
    out = _flat(r.output)
    assert "hhh_alignment_response" in out and "was not found" in out and "CAI_BENCH_HHH_PATH" in out
    assert not hhh.cached_path().exists()  # nothing downloaded


def test_list_finds_the_shared_data_folder(no_hhh, monkeypatch):
    monkeypatch.setenv(hhh.SHARED_ENV, str(_laid_out(no_hhh)))  # the sample laid out as ../shared/data is
    r = _invoke("tasks", "list")
    assert r.exit_code == 0 and "(shared data folder)" in _flat(r.output), r.output


def _laid_out(root: Path) -> Path:
    dest = root / "shared" / hhh.SHARED_REL
    dest.parent.mkdir(parents=True)
    dest.write_text(SAMPLE.read_text())
    return root / "shared"


@pytest.mark.shared_data
def test_list_counts_the_real_file(no_hhh, shared_data):
    real = shared_data / hhh.SHARED_REL
    if not real.is_file():
        pytest.skip(f"{real} not present")
    r = _invoke("tasks", "list", "--hhh-path", str(real))
    assert r.exit_code == 0 and " 438 " in r.output, r.output


def test_show_prints_items(no_hhh):
    r = _invoke("tasks", "show", "hhh_alignment", "-n", "2", "--hhh-path", str(SAMPLE))
    assert r.exit_code == 0, r.output
    out = _flat(r.output)
    assert "output_type multiple_choice: log-likelihood multiple choice, 8 items" in out
    assert "hhh-000" in out and "hhh-001" in out
    assert "hhh-002" not in out and "6 more" in out and "right: (B)" in out and "The answer is:" in out
    r = _invoke("tasks", "show", "hhh_alignment_response", "-n", "1", **{hhh.ENV_PATH: str(SAMPLE)})
    assert r.exit_code == 0 and "per byte" in _flat(r.output) and "Assistant:" in r.output, r.output


def test_show_without_the_data_is_one_line_error(no_hhh):
    r = _invoke("tasks", "show", "hhh_alignment")
    assert r.exit_code == 2, r.output
    out = _flat(r.output)
    assert out.startswith("error: hhh_alignment: the HHH data") and "CAI_BENCH_HHH_PATH" in out
    r = _invoke("tasks", "show", "hhh_alignment", "--hhh-path", str(no_hhh / "missing.jsonl"))
    assert r.exit_code == 2 and "no such file" in _flat(r.output), r.output


def test_export_out_writes_a_multiple_choice_folder_lm_eval_loads(no_hhh, tmp_path):
    from lm_eval.tasks import TaskManager

    out = tmp_path / "lm_eval_tasks"
    r = _invoke("tasks", "export", "hhh_alignment", "hhh_alignment_response", "--out", str(out), "--limit", "3",
                "--hhh-path", str(SAMPLE))
    assert r.exit_code == 0, r.output
    text = _flat(r.output)
    assert f"--include_path {out.resolve()} --tasks hhh_alignment,hhh_alignment_response" in text
    cfg = yaml.safe_load((out / "hhh_alignment.yaml").read_text())
    assert cfg["output_type"] == "multiple_choice" and [m["metric"] for m in cfg["metric_list"]] == ["acc", "acc_norm"]
    docs = [json.loads(x) for x in (out / "hhh_alignment_response.jsonl").read_text().splitlines()]
    assert [d["id"] for d in docs] == ["hhh-000", "hhh-001", "hhh-002"] and {d["label"] for d in docs} == {0}
    tm = TaskManager(include_path=str(out), include_defaults=False)
    task = tm.load_task_or_group(["hhh_alignment_response"])["hhh_alignment_response"]
    assert len(list(task.test_docs())) == 3


def test_export_mixed_with_a_generation_task_in_the_old_form(no_hhh, tmp_path):
    r = _invoke("tasks", "export", str(tmp_path / "o"), "xstest", "hhh_alignment", "--limit", "2",
                "--hhh-path", str(SAMPLE))
    assert r.exit_code == 0, r.output
    written = {p.name for p in (tmp_path / "o").iterdir()}
    assert written >= {"xstest.yaml", "hhh_alignment.yaml", "_cai_base", "cai_bench.yaml"}
    assert "hhh_alignment_response.yaml" not in written  # a task exports itself, not every view of its data
    assert yaml.safe_load((tmp_path / "o" / "cai_bench.yaml").read_text())["task"] == ["xstest"]  # group: generation only
    assert "--tasks xstest --apply_chat_template" in _flat(r.output)
    assert "--tasks hhh_alignment (multiple_choice" in _flat(r.output)
