"""An unknown field in any config names the closest known one ("did you mean"),
through the CLI a user types: a run config, a pipeline config (its file and
--set), a recipe --set, a task.yaml; a word close to nothing gets no guess."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.harness.config import RunConfig
from cai_bench.io import known_fields


def _fails(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 2, res.output + repr(res.exception)
    return " ".join(res.output.split())  # the one line, whatever the terminal wrapped


def test_run_config_unknown_fields_get_the_closest_name(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("checkpoints: [bundled:smollm2-135m-instruct]\ntasks: [cai_south_africa]\n"
                   "generation:\n  batch_sise: 4\nlimt: 3\ncolour: red\n")
    out = _fails("run", str(cfg), "--out", str(tmp_path / "out"))
    assert f"{cfg}:4: generation.batch_sise: unknown field (did you mean batch_size?)" in out
    assert f"{cfg}:5: limt: unknown field (did you mean limit?)" in out
    assert f"{cfg}:6: colour: unknown field;" in out + ";"  # nothing close: no guess
    assert not (tmp_path / "out").exists()


def test_pipeline_config_unknown_fields_get_the_closest_name(tmp_path: Path) -> None:
    cfg = tmp_path / "pipe.yaml"
    cfg.write_text("profile: cpu-small\ntask: cai_south_africa\neval:\n  hhh_limt: 3\n")
    out = _fails("pipeline", str(cfg), "--out", str(tmp_path / "out"))
    assert f"{cfg}:3: eval.hhh_limt: unknown field (did you mean hhh_limit?)" in out
    out = _fails("pipeline", str(cfg), "--set", "eval.limt=3", "--set", "eval.hhh_limit=3", "--out",
                 str(tmp_path / "out"))
    assert "eval.limt: unknown field (did you mean limit?)" in out and "hhh_limt" in out


def test_recipe_set_and_task_yaml_get_the_closest_name(tmp_path: Path) -> None:
    out = _fails("train", "sft", "mistral-7b-sft", "--set", "lora_rr=4", "--set", "leraning_rate=1e-4")
    assert "--set 'lora_rr=4': lora_rr: unknown field (did you mean lora_r?)" in out
    assert "leraning_rate: unknown field (did you mean learning_rate?)" in out
    d = tmp_path / "mine"
    d.mkdir()
    (d / "task.yaml").write_text("id: mine\nconstitution: grok\ncultre: ZA\n")
    (d / "prompts.jsonl").write_text('{"id": "1", "prompt": "x"}\n')
    out = _fails("tasks", "show", str(d))
    assert "task.yaml:3: cultre: unknown field (did you mean culture?)" in out


def test_known_fields_walks_lists_and_nested_models() -> None:
    assert "batch_size" in known_fields(RunConfig, ("generation", "batch_sise"))
    assert {"id", "settings"} <= set(known_fields(RunConfig, ("scorers", 0, "setings")))
    assert known_fields(RunConfig, ("seed", "x")) == []  # not a model: nothing to suggest
