"""The experiment planner without a model: the product of the axes, variant names, which
stages are shared, the transfer tasks of a culture axis, bad axes rejected with file, line
and reason; the two new pipeline keys (train_seed, data.drop_principles); a variant stopped
at the quality gate recorded while the others go on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.console import console
from cai_bench.errors import UserError
from cai_bench.experiment import load_experiment_file, run_experiment
from cai_bench.experiment.config import build_spec, variant_name
from cai_bench.experiment.plan import add_transfer_tasks, make_plan, shared_folder
from cai_bench.pipeline import build_config, load_config_file
from cai_bench.pipeline.runner import stage_keys

BASE = {"task": "cai_south_africa", "data": {"source": "bundled"}}


def _spec(axes: dict, out: Path, base: dict | None = None):
    return build_spec(dict(base or BASE), axes, where={}, source="test", base_lines=None, out=out)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_product_of_axes_names_and_one_store(tmp_path):
    spec = _spec({"data.selection": ["random", "contextual"], "train_seed": [0, 1, 2]}, tmp_path / "exp",
                 base={"task": "cai_south_africa", "data": {"source": "generate"}})
    names = [v.name for v in spec.variants]
    assert len(names) == 6 and len(set(names)) == 6
    assert names[:2] == ["data.selection=random__train_seed=0", "data.selection=random__train_seed=1"]
    assert spec.variants[3].values == {"data.selection": "contextual", "train_seed": 0}
    for v in spec.variants:
        assert v.cfg.data.selection == v.values["data.selection"] and v.cfg.train_seed == v.values["train_seed"]
        assert Path(v.cfg.out) == tmp_path / "exp" / "variants" / v.name
        assert v.cfg.eval.store == spec.store == f"sqlite:///{tmp_path / 'exp' / 'results.sqlite'}"


def test_variant_names_are_filesystem_safe_and_short():
    assert variant_name({"data.drop_principles": []}) == "data.drop_principles=none"
    assert variant_name({"data.drop_principles": ["democracy", "rule_of_law"]}) == \
        "data.drop_principles=democracy+rule_of_law"
    assert variant_name({"task": "/home/me/tasks/bolivia"}) == "task=bolivia"
    assert variant_name({"sft.set": ["learning_rate=1e-4"]}) == "sft.set=learning_rate=1e-4"
    odd = variant_name({"student": "hf:org/Model Name:v1?"})
    assert all(c.isalnum() or c in "._+=-" for c in odd)
    long_a = variant_name({"data.drop_principles": [f"principle_{i}" for i in range(20)]})
    long_b = variant_name({"data.drop_principles": [f"principle_{i}" for i in range(21)]})
    assert len(long_a) <= 80 and len(long_b) <= 80 and long_a != long_b


def test_sharing_decisions(tmp_path):
    out = tmp_path / "exp"
    spec = _spec({"data.drop_principles": [[], ["rule_of_law"]], "train_seed": [0, 1]}, out)
    plans = make_plan(spec)
    status = {vp.variant.name: {sp.stage: sp.status for sp in vp.stages} for vp in plans}
    first, seed1, drop0, drop1 = (vp.variant.name for vp in plans)
    assert set(status[first].values()) == {"compute"}
    assert status[seed1] == {"task": "share", "data": "share", "sft": "compute", "dpo": "compute",
                             "eval": "compute", "report": "compute"}
    assert status[drop0]["task"] == "share" and status[drop0]["data"] == "compute"
    assert status[drop1]["data"] == "share" and status[drop1]["sft"] == "compute"
    data = {sp.folder for vp in plans for sp in vp.stages if sp.stage == "data"}
    assert len(data) == 2 and all(f.parent == out / "stages" for f in data)
    reports = {sp.folder for vp in plans for sp in vp.stages if sp.stage == "report"}
    assert len(reports) == 4  # the report stage records each variant's own loop


def test_culture_axis_evaluates_every_culture_on_every_checkpoint(tmp_path):
    out = tmp_path / "exp"
    spec = _spec({"task": ["cai_south_africa", "cai_romania"]}, out, base={})
    add_transfer_tasks(spec)
    sa, ro = spec.variants
    held = {v.name: str(shared_folder(out, "task", stage_keys(v.cfg)["task"]) / "eval_task") for v in (sa, ro)}
    assert sa.cfg.eval.whole_tasks == [held[ro.name]] and ro.cfg.eval.whole_tasks == [held[sa.name]]
    # a seed axis beside it adds no culture: the other culture's held-out part once
    spec2 = _spec({"task": ["cai_south_africa", "cai_romania"], "train_seed": [0, 1]}, out, base={})
    add_transfer_tasks(spec2)
    assert [len(v.cfg.eval.whole_tasks) for v in spec2.variants] == [1, 1, 1, 1]
    one = _spec({"train_seed": [0, 1]}, out)
    add_transfer_tasks(one)
    assert all(not v.cfg.eval.whole_tasks for v in one.variants)


@pytest.mark.parametrize("vary, match", [
    ("  data.selction: [random]\n", r"exp\.yaml:4: vary\.data\.selction: unknown key of data 'selction' "
                                    r"\(did you mean selection\?\)"),
    ("  trian_seed: [0]\n", r"exp\.yaml:4: vary\.trian_seed: unknown pipeline config key 'trian_seed' "
                            r"\(did you mean train_seed\?\)"),
    ("  train_seed: []\n", r"exp\.yaml:4: vary\.train_seed: give a non-empty list of values"),
    ("  train_seed: 3\n", r"exp\.yaml:4: vary\.train_seed: give a non-empty list of values"),
    ("  train_seed: [0, 0]\n", r"exp\.yaml:4: vary\.train_seed: value 0 is given twice"),
    ("  train_seed: [0, x]\n", r"exp\.yaml:4: vary\.train_seed: value 'x': train_seed: Input should be a valid "
                               r"integer"),
    ("  data.selection: [random, smart]\n", r"exp\.yaml:4: vary\.data\.selection: value 'smart': data\.selection: "
                                            r"Input should be 'random' or 'contextual'"),
    ("  train_seed: [0]\n  data.drop_principles: [[democracy], [rule_of_lw]]\n",
     r"exp\.yaml:5: vary\.data\.drop_principles: value \['rule_of_lw'\]: .*'rule_of_lw' is not a principle of "
     r"'south_africa' \(did you mean rule_of_law\?\)"),
    ("  task: [cai_south_africa, cai_romanai]\n", r"exp\.yaml:4: vary\.task: value 'cai_romanai': unknown task"),
    ("  out: [a, b]\n", r"exp\.yaml:4: vary\.out: cannot be varied"),
    ("  data.selection: [random, contextual]\n", r"exp\.yaml:4: vary\.data\.selection: has no effect with "
                                                 r"data\.source bundled: the bundled GPT-4o rows of cai_south_africa "
                                                 r"are fixed.*Fix: set base\.data\.source: generate"),
    ("  seed.x: [1]\n", r"exp\.yaml:4: vary\.seed\.x: seed is a value, not a section"),
])
def test_bad_axes_are_rejected_with_file_line_and_reason(tmp_path, vary, match):
    path = _write(tmp_path / "exp.yaml", "base:\n  task: cai_south_africa\nvary:\n" + vary)
    with pytest.raises(UserError, match=match):
        load_experiment_file(path)
    assert not (tmp_path / "runs").exists()


def test_bad_experiment_file_fields(tmp_path):
    with pytest.raises(UserError, match=r"exp\.yaml:1: bse: unknown field \(did you mean base\?\)"):
        load_experiment_file(_write(tmp_path / "exp.yaml", "bse: {}\nvary: {train_seed: [0]}\n"))
    with pytest.raises(UserError, match=r"exp\.yaml:2: correction: 'bonferroni' is not one of holm, bh"):
        load_experiment_file(_write(tmp_path / "exp.yaml", "base: {task: cai_south_africa}\ncorrection: bonferroni\n"
                                    "vary: {train_seed: [0]}\n"))
    with pytest.raises(UserError, match=r"exp\.yaml:1: vary: required field missing"):
        load_experiment_file(_write(tmp_path / "exp.yaml", "base: {task: cai_south_africa}\n"))
    with pytest.raises(UserError, match=r"exp\.yaml:\d: vary: give at least one axis"):
        load_experiment_file(_write(tmp_path / "exp.yaml", "base: {task: cai_south_africa}\nvary: {}\n"))
    # the base's own problems are reported at the base's lines
    with pytest.raises(UserError, match=r"exp\.yaml:3: sft\.recipee: unknown field \(did you mean recipe\?\)"):
        load_experiment_file(_write(tmp_path / "exp.yaml", "base:\n  task: cai_south_africa\n  sft: {recipee: x}\n"
                                    "vary: {train_seed: [0]}\n"))


def test_experiment_file_resolves_paths_and_names_its_options(tmp_path):
    path = _write(tmp_path / "exp.yaml", "title: seeds\ncorrection: bh\nbase:\n  task: cai_south_africa\n"
                  "  out: runs/e\nvary:\n  train_seed: [0, 1]\n")
    spec = load_experiment_file(path)
    assert spec.out == tmp_path / "runs" / "e" and spec.title == "seeds" and spec.correction == "bh"
    assert spec.config["vary"] == {"train_seed": [0, 1]}
    assert load_experiment_file(path, out=tmp_path / "other").out == tmp_path / "other"
    path.write_text("base: {task: cai_south_africa, eval: {store: shared.sqlite}}\nvary: {train_seed: [0, 1]}\n")
    spec = load_experiment_file(path, out=tmp_path / "e")
    assert spec.store == f"sqlite:///{tmp_path / 'shared.sqlite'}"
    assert {v.cfg.eval.store for v in spec.variants} == {spec.store}


def test_dry_runs_print_the_plan_and_write_nothing(tmp_path):
    out = tmp_path / "exp"
    res = CliRunner().invoke(app, ["pipeline", "--task", "cai_south_africa", "--out", str(out), "--vary",
                                   "data.drop_principles=[],[rule_of_law]", "--vary", "train_seed=0,1", "--dry-run"],
                             env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert "4 variant(s)" in res.output and "data.drop_principles=rule_of_law__train_seed=1" in res.output
    assert "data shared with data.drop_principles=rule_of_law__train_seed=0" in res.output
    assert "estimated time of the stages to compute" in res.output
    assert not out.exists()
    path = _write(tmp_path / "exp.yaml", "base: {profile: cpu-small}\nvary:\n  task: [cai_south_africa, cai_romania]\n")
    res = CliRunner().invoke(app, ["experiment", str(path), "--out", str(out), "--dry-run"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert res.output.count("also evaluated whole") == 2 and not out.exists()
    res = CliRunner().invoke(app, ["pipeline", "--task", "cai_south_africa", "--vary", "trian_seed=0,1"])
    assert res.exit_code == 2 and "--vary 'trian_seed=0,1': vary.trian_seed: unknown pipeline config key" in \
        res.output.replace("\n", " ")


def test_train_seed_and_drop_principles_keys(tmp_path):
    plain = build_config(BASE)
    seeded = build_config({**BASE, "train_seed": 1})
    dropped = build_config({**BASE, "data": {**BASE["data"], "drop_principles": ["rule_of_law"]}})
    empty = build_config({**BASE, "data": {**BASE["data"], "drop_principles": []}, "eval": {"whole_tasks": []}})
    k, ks, kd = stage_keys(plain), stage_keys(seeded), stage_keys(dropped)
    assert stage_keys(empty) == k  # left at their defaults, the new keys hash as before they existed
    assert [s for s in k if k[s] != ks[s]] == ["sft", "dpo", "eval", "report"]
    assert [s for s in k if k[s] != kd[s]] == ["data", "sft", "dpo", "eval", "report"]
    cfg = _write(tmp_path / "p.yaml", "task: cai_south_africa\ndata:\n  drop_principles: [democrazy]\n")
    raw, lines = load_config_file(cfg)
    with pytest.raises(UserError, match=r"p\.yaml:2: data\.drop_principles: 'democrazy' is not a principle of "
                                        r"'south_africa' \(did you mean democracy\?\)"):
        build_config(raw, source=str(cfg), lines=lines)


def test_dropped_principles_are_absent_from_the_training_data(public_data, tmp_path, home):
    from cai_bench.pipeline.stages import read_jsonl, stage_data, stage_task

    drop = ["rule_of_law", "democracy"]
    cfg = build_config({**BASE, "out": str(tmp_path / "run"), "split": {"max_train": 40, "max_eval": 20, "seed": 1},
                        "data": {"source": "bundled", "bundled_dir": str(public_data), "drop_principles": drop,
                                 "min_kept": 1, "min_kept_fraction": 0.0},
                        "eval": {"tasks": [], "hhh": False}})
    task = stage_task(cfg, tmp_path / "run" / "task")
    held = {p["principle_id"] for p in read_jsonl(Path(task.eval_task) / "prompts.jsonl")}
    train = {p["principle_id"] for p in read_jsonl(Path(task.train_prompts))}
    assert set(drop) <= held and set(drop) <= train  # the split keeps every principle
    data = stage_data(cfg, tmp_path / "run" / "data", task)
    by_text = {p["prompt"]: p["principle_id"] for p in read_jsonl(Path(task.train_prompts))}
    trained = [by_text[r["messages"][0]["content"]] for r in read_jsonl(Path(data.dir) / "sft" / "train.jsonl")]
    trained += [by_text[r["prompt"][0]["content"]] for r in read_jsonl(Path(data.dir) / "prefs" / "train.jsonl")]
    assert trained and not set(drop) & set(trained)
    assert json.loads((Path(data.dir) / "dataset_info.json").read_text())["dropped_principles"] == sorted(drop)


def test_a_variant_stopped_by_the_gate_is_recorded_and_the_others_run(public_data, tmp_path, home):
    from cai_bench.results.experiments import load_experiments

    base = {**BASE, "split": {"max_train": 8, "max_eval": 4},
            "data": {"source": "bundled", "bundled_dir": str(public_data)}, "eval": {"tasks": [], "hhh": False}}
    spec = _spec({"data.min_kept": [1000, 2000]}, tmp_path / "exp", base=base)
    record = run_experiment(spec, console)
    assert [v.status for v in record.variants] == ["gate", "gate"]
    for v in record.variants:
        assert "quality gate failed" in v.reason and "\n" not in v.reason
        assert v.gate["sft"]["kept"] <= 8 and v.loop_id is None
    [stored] = load_experiments(spec.store)
    assert [v.status for v in stored.variants] == ["gate", "gate"]
    assert stored.stage_counts["task"] == {"computed": 1, "shared": 1, "run_now": 1}
    assert stored.stage_counts["sft"] == {"computed": 0, "shared": 0, "run_now": 0}


def test_estimates_fill_the_stages_a_last_run_did_not_time(tmp_path):
    """An experiment runs each variant's task stage first: its timings.json then holds only `task`."""
    from cai_bench.pipeline.preflight import preflight

    cfg = build_config({**BASE, "out": str(tmp_path / "v"), "eval": {"hhh": False}})
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "timings.json").write_text(json.dumps({"task": 5.0}))
    pre = preflight(cfg)
    assert pre.estimates["task"] == 5.0 and pre.estimates["sft"] > 60 and pre.estimates["eval"] > 60
    assert "for data, sft, dpo, eval, report" in pre.source
