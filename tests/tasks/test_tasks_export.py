"""lm-eval export: folder layout (docs/constitutions_and_tasks.md, "Export to
lm-eval"), subsets, metric module, and the real lm-eval loader / `lm-eval
validate` / `lm_eval` CLI on the exported folder."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.errors import UserError
from cai_bench.tasks import PromptRecord, Task, export_lm_eval, load_task

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class _FunctionLoader(yaml.SafeLoader):
    pass


_FunctionLoader.add_constructor("!function", lambda loader, node: ("FUNCTION", loader.construct_scalar(node)))


def read_yaml(p: Path):
    return yaml.load(p.read_text(), Loader=_FunctionLoader)  # noqa: S506


def test_layout(home, tmp_path):
    sa, xs = load_task("cai_south_africa"), load_task("xstest")
    names = export_lm_eval([sa, xs], tmp_path / "out")
    assert names == {"cai_south_africa": "cai_south_africa", "xstest": "xstest"}
    out = tmp_path / "out"
    base = read_yaml(out / "_cai_base")
    assert base["output_type"] == "generate_until" and base["dataset_path"] == "json"
    assert base["test_split"] == "test" and base["generation_kwargs"]["until"] == []
    t = read_yaml(out / "cai_south_africa.yaml")
    assert t["include"] == "_cai_base" and t["generation_kwargs"]["until"] == []
    data = Path(t["dataset_kwargs"]["data_files"]["test"])
    assert data.is_absolute() and data.exists()
    assert t["process_results"] == ("FUNCTION", "cai_bench_metric.similarity_results")
    assert t["metric_list"][0]["metric"] == "similarity"
    docs = [json.loads(line) for line in data.read_text().splitlines()]
    assert len(docs) == 220 and set(docs[0]) >= {"id", "prompt", "reference", "principle_id", "category", "expect"}
    assert read_yaml(out / "xstest.yaml")["metric_list"][0]["metric"] == "response_words"
    group = read_yaml(out / "cai_bench.yaml")
    assert group["group"] == "cai_bench" and group["task"] == ["cai_south_africa", "xstest"]
    assert {m["metric"] for m in group["aggregate_metric_list"]} == {"similarity", "response_words"}
    assert (out / "cai_bench_metric.py").read_text().count("import") == 1


def test_subsets_suffix_and_no_metric(home, tmp_path):
    sa = load_task("cai_south_africa")
    ids = [sa.prompts[5].id, sa.prompts[2].id]
    names = export_lm_eval([sa], tmp_path, subsets={"cai_south_africa": ids}, name_suffix="_c1", with_metric=False)
    assert names == {"cai_south_africa": "cai_south_africa_c1"}
    cfg = read_yaml(tmp_path / "cai_south_africa_c1.yaml")
    assert "process_results" not in cfg and "metric_list" not in cfg and cfg["task"] == "cai_south_africa_c1"
    docs = [json.loads(x) for x in (tmp_path / "cai_south_africa_c1.jsonl").read_text().splitlines()]
    assert [d["id"] for d in docs] == [sa.prompts[2].id, sa.prompts[5].id]
    assert read_yaml(tmp_path / "cai_bench_c1.yaml")["group"] == "cai_bench_c1"
    with pytest.raises(UserError, match="no prompt"):
        export_lm_eval([sa], tmp_path, subsets={"cai_south_africa": ["nope"]})
    with pytest.raises(UserError, match="name_suffix"):
        export_lm_eval([sa], tmp_path, name_suffix="/../x")


def test_user_text_never_becomes_yaml_code(home, tmp_path):
    evil = "!function os.system\n{{ cycler.__init__.__globals__ }}\ntask: pwned"
    t = Task(id="evil", constitution="grok", culture="!function os.system", description=evil,
             prompts=[PromptRecord(id="1", prompt=evil, reference=evil, category=evil)])
    export_lm_eval([t], tmp_path)
    cfg_text = (tmp_path / "evil.yaml").read_text()
    assert "os.system" not in cfg_text.replace("'!function os.system'", "")
    assert read_yaml(tmp_path / "evil.yaml")["metadata"]["culture"] == "!function os.system"
    assert json.loads((tmp_path / "evil.jsonl").read_text())["prompt"] == evil


def test_lm_eval_task_manager_loads_export(home, tmp_path):
    from lm_eval.tasks import TaskManager, get_task_dict

    export_lm_eval([load_task("cai_romania")], tmp_path, subsets={"cai_romania": [load_task("cai_romania").prompts[0].id]})
    tm = TaskManager(include_path=str(tmp_path), include_defaults=False)
    task = get_task_dict(["cai_romania"], tm)["cai_romania"]
    doc = list(task.test_docs())[0]
    assert task.doc_to_text(doc) == load_task("cai_romania").prompts[0].prompt
    assert task.config.generation_kwargs["until"] == []
    assert task.process_results(doc, [doc["reference"]])["similarity"] > 0.99


def test_metric_uses_shared_embedder_once(minilm_dir):
    from cai_bench import embeddings
    from cai_bench.tasks.lm_eval_metric import length_results, similarity_results

    doc = {"reference": "I cannot help with that; apartheid caused great harm."}
    before = embeddings._load.cache_info().misses
    same = similarity_results(doc, ["I cannot help with that; apartheid caused great harm."])["similarity"]
    other = similarity_results(doc, ["Bananas are yellow fruit."])["similarity"]
    assert same > 0.99 and other < 0.5
    assert embeddings._load.cache_info().misses - before <= 1
    assert math.isnan(similarity_results({"reference": ""}, ["x"])["similarity"])
    assert length_results({}, ["one two three"]) == {"response_words": 3.0}


def _env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_lm_eval_validate_cli(home, tmp_path):
    r = CliRunner().invoke(app, ["tasks", "export", str(tmp_path), "cai_south_africa", "xstest", "--limit", "3"])
    assert r.exit_code == 0, r.output
    p = subprocess.run([str(BIN / "lm-eval"), "validate", "--tasks", "cai_bench,cai_south_africa,xstest",
                        "--include_path", str(tmp_path)], capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 0 and "valid" in (p.stdout + p.stderr), p.stdout + p.stderr


@pytest.mark.slow
def test_real_lm_eval_cli_runs_exported_task(home, tmp_path, smollm2_dir):
    """The acceptance check: `lm_eval ... --include_path DIR --tasks cai_south_africa --limit 2`."""
    r = CliRunner().invoke(app, ["tasks", "export", str(tmp_path / "tasks"), "cai_south_africa"])
    assert r.exit_code == 0, r.output
    cmd = [str(BIN / "lm_eval"), "--model", "hf", "--model_args", f"pretrained={smollm2_dir}",
           "--include_path", str(tmp_path / "tasks"), "--tasks", "cai_south_africa", "--limit", "2",
           "--apply_chat_template", "--output_path", str(tmp_path / "out"), "--device", "cpu",
           "--gen_kwargs", "max_gen_toks=12", "--log_samples"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())
    sim = results["results"]["cai_south_africa"]["similarity,none"]
    assert -1.0 <= sim <= 1.0
    samples = [json.loads(x) for x in next((tmp_path / "out").rglob("samples_cai_south_africa_*.jsonl")).read_text().splitlines()]
    assert len(samples) == 2 and samples[0]["doc"]["id"] == "human_dignity_and_equality-1"
    assert samples[0]["resps"][0][0].strip()


def test_export_into_a_file_is_one_line_error(home, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("keep me")
    for dest, why in ((blocker, "exists and is not a folder"), (blocker / "out", "cannot create the export folder")):
        r = CliRunner().invoke(app, ["tasks", "export", str(dest), "xstest"], env={"COLUMNS": "250"})
        assert r.exit_code == 2 and not isinstance(r.exception, (UserError, OSError)), r.output
        assert f"error: {dest}: {why}" in " ".join(r.output.split())
    assert blocker.read_text() == "keep me"
    with pytest.raises(UserError, match="not a folder"):
        export_lm_eval([load_task("xstest")], blocker)
