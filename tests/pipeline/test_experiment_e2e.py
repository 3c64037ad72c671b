"""`cai-bench experiment` end to end on a tiny in-process model: two training seeds share
the task and data stages, the base model is answered once through the shared store, a
re-run computes nothing, and a third seed computes only its own stages."""

from __future__ import annotations

import json
import time

import pytest

from cai_bench.console import console
from cai_bench.experiment import run_experiment
from cai_bench.experiment.config import build_spec
from cai_bench.results.experiments import load_experiments

TRAIN = ["max_steps=1", "logging_steps=1", "save_steps=1", "load_in_4bit=false", "per_device_train_batch_size=2",
         "max_length=96"]


def _base(tiny_model, public_data, hhh_sample) -> dict:
    return {"task": "cai_south_africa", "student": str(tiny_model),
            "split": {"max_train": 8, "max_eval": 4, "seed": 3},
            "data": {"source": "bundled", "bundled_dir": str(public_data), "min_kept": 4},
            "sft": {"recipe": "smollm2-135m-cpu-sft", "set": TRAIN},
            "dpo": {"recipe": "smollm2-135m-cpu-dpo", "set": TRAIN},
            "eval": {"tasks": [], "max_new_tokens": 6, "batch_size": 4, "hhh_path": str(hhh_sample),
                     "hhh_limit": 2, "hhh_views": ["hhh_alignment_response"], "n_boot": 200}}


def _spec(base: dict, seeds: list[int], out):
    return build_spec(base, {"train_seed": seeds}, where={}, source="test", base_lines=None, out=out)


def test_experiment_shares_stages_records_and_reruns(tiny_model, public_data, hhh_sample, tmp_path, home):
    out = tmp_path / "exp"
    base = _base(tiny_model, public_data, hhh_sample)
    record = run_experiment(_spec(base, [0, 1], out), console)

    assert [v.name for v in record.variants] == ["train_seed=0", "train_seed=1"]
    assert all(v.status == "done" and v.loop_id for v in record.variants)
    counts = {s: (c["computed"], c["shared"]) for s, c in record.stage_counts.items()}
    assert counts == {"task": (1, 1), "data": (1, 1), "sft": (2, 0), "dpo": (2, 0), "eval": (2, 0),
                      "report": (2, 0)}
    v0, v1 = out / "variants" / "train_seed=0", out / "variants" / "train_seed=1"
    assert (v0 / "data").resolve() == (v1 / "data").resolve()  # one copy of the shared data
    assert (v0 / "data").resolve().parent == out / "stages"
    for v, seed in ((v0, 0), (v1, 1)):  # the seed reaches both recipes
        for stage in ("sft", "dpo"):
            assert f"seed={seed}" in json.loads((v / stage / "provenance.json").read_text())["overrides"]
    # answers are keyed by checkpoint fingerprint: the base model is answered once (by the first variant), and
    # each variant generates 4 held-out answers per checkpoint no earlier variant had
    infos = [json.loads((v / "eval" / "stage.json").read_text())["info"] for v in (v0, v1)]
    seen: set[str] = set()
    for info in infos:
        new = set(info["fingerprints"].values()) - seen
        assert info["generated"] == 4 * len(new)
        seen |= new
    assert infos[0]["fingerprints"]["base"] == infos[1]["fingerprints"]["base"]
    assert infos[1]["fingerprints"]["sft"] != infos[0]["fingerprints"]["sft"]
    stored = load_experiments(f"sqlite:///{out / 'results.sqlite'}")
    assert [e.title for e in stored] == [record.title] and stored[0].stage_counts == record.stage_counts
    assert (out / "report" / "experiment.md").is_file() and (out / "report" / "pipeline.md").is_file()
    # each variant resumes alone from its pipeline_config.json
    assert json.loads((v1 / "pipeline_config.json").read_text())["train_seed"] == 1

    started = time.perf_counter()  # a finished experiment: every stage cached, no model loaded
    again = run_experiment(_spec(base, [0, 1], out), console)
    assert time.perf_counter() - started < 30
    assert all(c["run_now"] == 0 for c in again.stage_counts.values())

    # killed in the second seed's DPO (started, not done): the re-run resumes that stage only
    dpo_state = v1 / "dpo" / "stage.json"
    dpo_state.write_text(json.dumps({"key": json.loads(dpo_state.read_text())["key"], "done": False}))
    resumed = run_experiment(_spec(base, [0, 1], out), console)
    assert {s: c["run_now"] for s, c in resumed.stage_counts.items()} == {
        "task": 0, "data": 0, "sft": 0, "dpo": 1, "eval": 0, "report": 0}

    third = run_experiment(_spec(base, [0, 1, 2], out), console)  # a new seed: its own stages only
    assert {s: c["run_now"] for s, c in third.stage_counts.items()} == {
        "task": 0, "data": 0, "sft": 1, "dpo": 1, "eval": 1, "report": 1}
    assert third.stage_counts["data"] == {"computed": 1, "shared": 2, "run_now": 0}


@pytest.mark.slow  # ~25 s of CPU (80 s wall beside other work): the default suite has the seed experiment
def test_culture_axis_evaluates_every_checkpoint_on_every_culture(tiny_model, tmp_path, home, monkeypatch):
    """Two cultures: each DPO checkpoint is evaluated on both held-out parts, whole (eval.limit is 1)."""
    monkeypatch.delenv("CAI_BENCH_SHARED_DATA", raising=False)
    from cai_bench.results.load import load_results

    base = {"student": str(tiny_model), "split": {"max_train": 10, "max_eval": 3, "seed": 3},
            "data": {"source": "bundled", "min_kept": 1, "min_kept_fraction": 0.0},  # the packaged copy (the samples lack RO rows)
            "sft": {"recipe": "smollm2-135m-cpu-sft", "set": TRAIN}, "dpo": {"recipe": "smollm2-135m-cpu-dpo", "set": TRAIN},
            "eval": {"tasks": [], "limit": 1, "max_new_tokens": 4, "batch_size": 4, "hhh": False, "n_boot": 200}}
    spec = build_spec(base, {"task": ["cai_south_africa", "cai_romania"]}, where={}, source="test", base_lines=None,
                      out=tmp_path / "exp")
    record = run_experiment(spec, console)
    assert [v.status for v in record.variants] == ["done", "done"]
    assert record.stage_counts["task"] == {"computed": 2, "shared": 0, "run_now": 2}
    df = load_results(spec.store)
    held = {"cai_south_africa_heldout", "cai_romania_heldout"}
    for v in spec.variants:
        info = json.loads((v.cfg.out / "eval" / "stage.json").read_text())["info"]
        assert set(info["tasks"]) == held
        dpo = df[(df.fingerprint == info["fingerprints"]["dpo"]) & (df.scorer_id == "similarity")]
        assert {t: dpo[dpo.task_id == t].prompt_id.nunique() for t in held} == {t: 3 for t in held}


def test_a_variant_that_crashes_is_recorded_and_the_others_run(tiny_model, public_data, hhh_sample, tmp_path, home):
    """A student whose weights file is cut short (a broken download): that variant fails with
    one line and its traceback in error.log, the next variant still runs, and the command
    exits 1 after the report."""
    import shutil

    from typer.testing import CliRunner

    from cai_bench.cli import app

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    base = _base(tiny_model, public_data, hhh_sample)
    base.pop("student")
    exp = tmp_path / "exp.yaml"
    exp.write_text(json.dumps({"base": base, "vary": {"student": [str(broken), str(tiny_model)]}}))
    res = CliRunner().invoke(app, ["experiment", str(exp), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1, res.output + repr(res.exception)
    (record,) = load_experiments(f"sqlite:///{tmp_path / 'out' / 'results.sqlite'}")
    failed, done = record.variants
    assert (failed.status, done.status) == ("failed", "done")
    assert "in its sft stage" in failed.reason and "error.log" in failed.reason
    log = tmp_path / "out" / "variants" / failed.name / "error.log"
    assert "Traceback" in log.read_text()
    assert f"{failed.name}: failed" in res.output.replace("\n", " ")
