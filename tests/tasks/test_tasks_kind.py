"""A task declares its kind in task.yaml (`output_type`, as in lm-eval): validated with
file, line, field and reason; the built-in HHH tasks are `multiple_choice` by their data;
`tasks list/show` and the lm-eval export follow the declared kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.errors import UserError
from cai_bench.tasks import BUILTIN_DIR, export_lm_eval, load_task, write_user_task
from cai_bench.tasks import hhh

SAMPLE = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "hhh_sample.jsonl"  # 8 real items


def _task(root: Path, name: str, head: str, prompts: bool = True) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(f"id: {name}\nconstitution: anthropic\n{head}", encoding="utf-8")
    if prompts:
        (folder / "prompts.jsonl").write_text(json.dumps({"id": "p1", "prompt": "Hello?"}) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize(("name", "head", "prompts", "expect"), [
    ("bad_kind", "output_type: generate\n", True,
     "bad_kind/task.yaml:3: output_type: unknown task kind; known: generate_until, multiple_choice (got 'generate')"),
    ("mc_no_items", "output_type: multiple_choice\n", False,
     "mc_no_items/task.yaml:1: items: a multiple_choice task names its item source; known: hhh_alignment, "
     "hhh_alignment_response"),
    ("mc_bad_items", "output_type: multiple_choice\nitems: mmlu\n", False,
     "mc_bad_items/task.yaml:4: items: unknown item source; known: hhh_alignment, hhh_alignment_response"),
    ("gen_with_items", "items: hhh_alignment\n", True,
     "gen_with_items/task.yaml:3: items: only a multiple_choice task has an item source"),
    ("mc_with_prompts", "output_type: multiple_choice\nitems: hhh_alignment\nprompts: prompts.jsonl\n", True,
     "mc_with_prompts/task.yaml:5: prompts: a multiple_choice task takes its items from `items`"),
])
def test_a_bad_kind_is_one_line_naming_file_field_reason(home, tmp_path, name, head, prompts, expect):
    folder = _task(tmp_path, name, head, prompts)
    with pytest.raises(UserError) as exc:
        load_task(str(folder))
    assert expect in exc.value.message and "\n" not in exc.value.message
    # the CLI: the same one line, exit 2; `tasks list` skips it with a warning and lists the rest
    r = CliRunner().invoke(app, ["tasks", "show", str(folder)], env={"COLUMNS": "400"})
    assert r.exit_code == 2 and expect in " ".join(r.output.split()), r.output
    r = CliRunner().invoke(app, ["tasks", "list", "-T", str(tmp_path)], env={"COLUMNS": "250"})
    assert r.exit_code == 0 and "xstest" in r.output and f"│ {name} " not in r.output, r.output


def test_builtin_hhh_is_multiple_choice_by_its_task_yaml(home):
    for tid in hhh.VIEWS:
        declared = yaml.safe_load((BUILTIN_DIR / tid / "task.yaml").read_text())
        assert declared["output_type"] == "multiple_choice" and declared["items"] == tid
        assert not (BUILTIN_DIR / tid / "prompts.jsonl").exists()  # the HHH data is not vendored
        t = load_task(tid)
        assert t.output_type == "multiple_choice" and t.is_multiple_choice and t.items == tid
        assert (t.culture, t.constitution, t.prompts) == ("HHH", "anthropic", [])
    assert load_task("xstest").output_type == "generate_until"  # the default when task.yaml says nothing


def test_list_and_show_say_the_kind(home, monkeypatch):
    monkeypatch.setenv(hhh.ENV_PATH, str(SAMPLE))
    r = CliRunner().invoke(app, ["tasks", "list"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    kinds = {ln.split("│")[1].strip(): ln.split("│")[4].strip() for ln in r.output.splitlines()
             if ln.startswith("│ ")}
    assert kinds["hhh_alignment"] == kinds["hhh_alignment_response"] == "multiple_choice (log-likelihood)"
    assert kinds["xstest"] == kinds["cai_romania"] == "generate_until"
    r = CliRunner().invoke(app, ["tasks", "show", "xstest", "-n", "0"], env={"COLUMNS": "250"})
    assert r.exit_code == 0 and "output_type: generate_until" in r.output, r.output


def test_user_task_yaml_leaves_the_default_kind_unsaid(home, tmp_path):
    folder = write_user_task(load_task("xstest").model_copy(update={"id": "my_x"}), tmp_path)
    text = (folder / "task.yaml").read_text()
    assert "output_type" not in text and "items" not in text  # built-in task files regenerate unchanged
    assert load_task(str(folder)).output_type == "generate_until"


def test_a_user_multiple_choice_task_exports_as_lm_eval_multiple_choice(home, tmp_path):
    from lm_eval.tasks import TaskManager

    folder = _task(tmp_path / "tasks", "my_hhh", "culture: HHH\noutput_type: multiple_choice\n"
                   "items: hhh_alignment_response\n", prompts=False)
    mine, gen = load_task(str(folder)), load_task("xstest")
    out = tmp_path / "out"
    names = export_lm_eval([gen, mine], out, limit=2, name_suffix="_v1", hhh_path=SAMPLE)
    assert names == {"xstest": "xstest_v1", "my_hhh": "my_hhh_v1"}
    cfg = yaml.safe_load((out / "my_hhh_v1.yaml").read_text())
    assert cfg["output_type"] == "multiple_choice" and cfg["task"] == "my_hhh_v1"
    docs = [json.loads(x) for x in (out / "my_hhh_v1.jsonl").read_text().splitlines()]
    items = hhh.load_hhh(SAMPLE)[:2]
    assert docs == [hhh.item_doc(it, "hhh_alignment_response") for it in items]
    assert "output_type: generate_until" in (out / "xstest_v1.yaml").read_text()
    assert yaml.safe_load((out / "cai_bench_v1.yaml").read_text())["task"] == ["xstest_v1"]
    tm = TaskManager(include_path=str(out), include_defaults=False)
    loaded = tm.load_task_or_group(["my_hhh_v1", "xstest_v1"])
    assert loaded["my_hhh_v1"].OUTPUT_TYPE == "multiple_choice" and len(list(loaded["my_hhh_v1"].test_docs())) == 2
    assert loaded["xstest_v1"].OUTPUT_TYPE == "generate_until"


def test_generate_refuses_a_multiple_choice_task_as_prompts(home):
    from cai_bench.generation.prompts import load_prompts

    with pytest.raises(UserError, match="'hhh_alignment' is multiple_choice: it has no prompts to answer"):
        load_prompts("hhh_alignment")
    assert len(load_prompts("xstest", 3)[0]) == 3
