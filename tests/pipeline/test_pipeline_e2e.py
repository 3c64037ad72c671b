"""`cai-bench pipeline` end to end on a tiny in-process model: all six stages, the
verdict report, a cached re-run, and a settings change that redoes only downstream."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app

from cai_bench.console import console
from cai_bench.errors import UserError
from cai_bench.pipeline import build_config
from cai_bench.pipeline.runner import run_pipeline, stage_keys

TRAIN = ["max_steps=2", "logging_steps=1", "save_steps=1", "load_in_4bit=false", "per_device_train_batch_size=2",
         "max_length=128"]


def _cfg(tiny_model, public_data, hhh_sample, out, **over):
    raw = {"task": "cai_south_africa", "student": str(tiny_model), "out": str(out),
           "split": {"max_train": 12, "max_eval": 4, "seed": 3},
           "data": {"source": "bundled", "bundled_dir": str(public_data), "min_kept": 4},
           "sft": {"recipe": "smollm2-135m-cpu-sft", "set": TRAIN},
           "dpo": {"recipe": "smollm2-135m-cpu-dpo", "set": TRAIN},
           "eval": {"tasks": ["xstest"], "limit": 2, "max_new_tokens": 8, "batch_size": 4, "hhh_path": str(hhh_sample),
                    "hhh_limit": 3, "hhh_views": ["hhh_alignment", "hhh_alignment_response"], "n_boot": 200}}
    for k, v in over.items():
        raw[k] = {**raw[k], **v} if isinstance(v, dict) else v
    return build_config(raw)


def test_pipeline_end_to_end_cached_and_resumable(tiny_model, public_data, hhh_sample, tmp_path, home):
    out = tmp_path / "run"
    cfg = _cfg(tiny_model, public_data, hhh_sample, out)
    data = run_pipeline(cfg, console)

    split = json.loads((out / "task" / "split.json").read_text())
    assert len(split["train"]) == 12 and len(split["eval"]) == 4 and not set(split["train"]) & set(split["eval"])
    quality = json.loads((out / "data" / "quality.json").read_text())
    assert 8 <= quality["sft"]["total"] <= 12 and quality["sft"]["kept"] >= 4  # rows of train prompts only
    assert json.loads((out / "data" / "leakage.json").read_text())["total"] == 0
    prov = json.loads((out / "dpo" / "provenance.json").read_text())
    assert prov["start"] == str(out / "sft") and prov["data"]["sha256"]["prefs/train.jsonl"]
    tasks = {(r["task"], r["metric"]) for r in data.rows}
    assert ("cai_south_africa_heldout", "similarity.similarity") in tasks
    # HHH is scored into the store by `run` like any task: its rows name scorer and metric
    assert ("hhh_alignment", "hhh_loglik.accuracy") in tasks and ("hhh_alignment_response", "hhh_loglik.accuracy") in tasks
    assert any(t == "xstest" for t, _ in tasks)
    for r in data.rows:
        assert r["verdict"] in ("improved", "no significant change", "regressed")
        assert set(r) >= {"base", "sft", "dpo", "sft_vs_base", "dpo_vs_sft", "dpo_vs_base"}
    early, final = " (right after training, 4 held-out prompts)", " (all 4 held-out answers)"
    assert [g["name"] for g in data.guards] == [
        "collapse after sft" + early, "collapse after dpo" + early, "no-op DPO" + early,
        "collapse after sft" + final, "collapse after dpo" + final, "no-op DPO" + final]
    sft_info = json.loads((out / "sft" / "stage.json").read_text())["info"]  # checked before DPO starts
    assert [g["name"] for g in sft_info["guards"]] == ["collapse after sft" + early]
    guard_file = json.loads((out / "dpo" / "guard.json").read_text())
    assert set(guard_file["answers"]) == {"base", "sft", "dpo"} and len(guard_file["answers"]["dpo"]) == 4
    dpo_info = json.loads((out / "dpo" / "stage.json").read_text())["info"]  # the dpo stage warns right away
    margin = dpo_info["max_abs_margin"]
    if margin is not None and margin < 1e-3:
        assert any(w.startswith("no-op DPO" + early) for w in dpo_info["warnings"])
    fired = [g["name"] for g in data.guards if g["fired"]]
    assert [w.split(":")[0] for w in data.warnings] == fired  # every fired guard is a report warning
    md = (out / "report" / "pipeline.md").read_text()
    assert "## Verdicts" in md and "## Data quality" in md and "## Training curve: dpo" in md
    png = (out / "report" / "training_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and "![training curves](training_curves.png)" in md
    html = (out / "report" / "samples.html").read_text()
    assert "<td>" in html and "<th>SFT</th>" in html

    # `cai-bench report` on the pipeline's store rebuilds the same loop section, browser and verdicts
    store = json.loads((out / "eval" / "stage.json").read_text())["info"]["store"]
    res = CliRunner().invoke(app, ["report", "--store", store, "--out", str(tmp_path / "again"), "--n-boot", "200"],
                             env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    for name in ("pipeline.md", "pipeline.json", "samples.html", "index.html", "training_curves.png"):
        assert (tmp_path / "again" / "report" / name).read_bytes() == (out / "report" / name).read_bytes(), name
    assert "base -> SFT -> DPO" in res.output and "cai_south_africa_heldout" in res.output

    report_bytes = (out / "report" / "pipeline.md").read_bytes()
    started = time.perf_counter()
    run_pipeline(cfg, console)  # everything cached: no model loaded
    assert time.perf_counter() - started < 15
    for stage in ("task", "data", "sft", "dpo", "eval", "report"):
        assert json.loads((out / stage / "stage.json").read_text())["done"]
    assert (out / "report" / "pipeline.md").read_bytes() == report_bytes

    # killed during eval (stage started, not done): the re-run resumes it from the store, same verdicts
    rows = json.loads((out / "report" / "pipeline.json").read_text())["rows"]
    key = json.loads((out / "eval" / "stage.json").read_text())["key"]
    (out / "eval" / "stage.json").write_text(json.dumps({"key": key, "done": False}))
    run_pipeline(cfg, console)
    assert json.loads((out / "eval" / "stage.json").read_text())["info"]["generated"] == 0
    assert json.loads((out / "report" / "pipeline.json").read_text())["rows"] == rows

    changed = _cfg(tiny_model, public_data, hhh_sample, out, dpo={"set": [*TRAIN, "beta=0.2"]})
    old, new = stage_keys(cfg), stage_keys(changed)
    assert [s for s in old if old[s] != new[s]] == ["dpo", "eval", "report"]
    sft_mtime = (out / "sft" / "adapter_model.safetensors").stat().st_mtime_ns
    run_pipeline(changed, console)
    assert (out / "sft" / "adapter_model.safetensors").stat().st_mtime_ns == sft_mtime
    assert json.loads((out / "dpo" / "provenance.json").read_text())["overrides"][-1] == "beta=0.2"


def test_config_errors_name_field(tmp_path):
    with pytest.raises(UserError, match="give `task`"):
        build_config({"out": str(tmp_path)})
    with pytest.raises(UserError, match="data.source bundled exists only for"):
        build_config({"task": "xstest", "data": {"source": "bundled"}})
    with pytest.raises(UserError, match=r"eval\.hhh_limit: Input should be greater than or equal to 1"):
        build_config({"task": "cai_south_africa", "eval": {"hhh_limit": 0}})


def test_generate_source_stops_at_the_quality_gate(tiny_model, tmp_path, home):
    """A user constitution + prompts file, CAI data generated by a (random, tiny) generator:
    its revisions are junk, so the gate stops the pipeline before any training."""
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"id": f"p{i}", "prompt": f"Is it fair to mock people from province {i} for their accent?",
             "principle_id": "cultural_diversity" if i % 2 else "human_dignity_and_equality"} for i in range(10)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    cfg = build_config({"constitution": "south_africa", "prompts": str(prompts), "student": str(tiny_model),
                        "out": str(out), "split": {"eval_fraction": 0.3},
                        "data": {"max_new_tokens": 6, "batch_size": 8, "min_kept": 4},
                        "eval": {"tasks": [], "hhh": False}, "allow_no_verdict": True})
    assert cfg.data_source == "generate" and cfg.generator == str(tiny_model)
    with pytest.raises(UserError, match=r"quality gate failed: kept \d+/\d+ .*--allow-low-quality"):
        run_pipeline(cfg, console)
    quality = json.loads((out / "data" / "quality.json").read_text())
    assert quality["sft"]["total"] == len(json.loads((out / "task" / "split.json").read_text())["train"])
    assert sum(quality["sft"]["dropped"].values()) > quality["sft"]["kept"]
    assert not (out / "sft").exists()  # nothing trained on junk
    assert not json.loads((out / "data" / "stage.json").read_text())["done"]
    # the override is a check, not an input: a re-run with it resumes the stage (generated records kept)
    allowed = cfg.model_copy(update={"data": cfg.data.model_copy(update={"allow_low_quality": True})})
    assert stage_keys(allowed)["data"] == stage_keys(cfg)["data"]
    assert (out / "data" / "generated" / "records.jsonl").is_file()
