"""Recipe validation and CLI errors: no model is loaded here."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.errors import UserError
from cai_bench.training import Recipe, list_recipes, load_recipe

runner = CliRunner()


def _out(res) -> str:
    """CLI output with Rich's line wrapping undone."""
    return " ".join(res.output.split())

GOOD = """\
model_name_or_path: bundled:smollm2-135m-instruct
dataset_mixer:
  {data}: 1.0
output_dir: {out}
max_steps: 3
"""


def _write(tmp_path, text: str, name: str = "r.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_builtin_recipes_load_with_blue_dot_hyperparameters():
    names = set(list_recipes())
    expected = {f"{m}-{s}" for m in ("smollm2-135m-cpu", "smollm2-1.7b", "mistral-7b") for s in ("sft", "dpo")}
    assert expected <= names
    for name in expected:
        r = load_recipe(name)
        assert r.stage == name.rsplit("-", 1)[1]
        assert (r.lora_r, r.lora_alpha, r.lora_dropout) == (16, 16, 0.05)
        assert r.lr_scheduler_type == "cosine" and r.load_in_4bit and r.bnb_4bit_quant_type == "nf4"
    assert load_recipe("mistral-7b-sft").learning_rate == 2e-5
    assert load_recipe("smollm2-1.7b-sft").learning_rate == 1e-3
    assert load_recipe("mistral-7b-dpo").learning_rate == 5e-7 and load_recipe("mistral-7b-dpo").beta == 0.01
    assert load_recipe("smollm2-1.7b-dpo").learning_rate == 1e-6
    assert load_recipe("mistral-7b-sft").gpu_recipe and not load_recipe("smollm2-135m-cpu-sft").gpu_recipe


def test_overrides_are_parsed_as_yaml(tmp_path):
    r = load_recipe("smollm2-135m-cpu-sft", ["max_steps=7", "dataset_mixer={a/b: 0.5, c: 1}", "report_to=[tensorboard]",
                                             "r=8", "target_modules=[q_proj]"])
    assert r.max_steps == 7 and r.dataset_mixer == {"a/b": 0.5, "c": 1.0}
    assert r.report_to == ["tensorboard"] and r.lora_r == 8 and r.lora_target_modules == ["q_proj"]
    assert load_recipe("smollm2-135m-cpu-sft").report_to == []


def test_unknown_key_is_named_with_line(tmp_path):
    p = _write(tmp_path, GOOD.format(data="d", out="o") + "lora_rank: 8\n")
    with pytest.raises(UserError) as e:
        load_recipe(p)
    assert f"{p}:6: lora_rank: unknown field" in str(e.value)


def test_bad_type_and_missing_key(tmp_path):
    p = _write(tmp_path, GOOD.format(data="d", out="o") + "learning_rate: fast\n")
    with pytest.raises(UserError, match=r"learning_rate: .*valid number.*'fast'"):
        load_recipe(p)
    p = _write(tmp_path, "model_name_or_path: x\noutput_dir: o\n", "m.yaml")
    with pytest.raises(UserError, match="dataset_mixer: missing required field"):
        load_recipe(p)
    with pytest.raises(UserError, match=r"fraction for 'd' must be in \(0, 1\]"):
        load_recipe(_write(tmp_path, GOOD.format(data="d", out="o"), "f.yaml"), ["dataset_mixer={d: 2}"])
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        load_recipe("smollm2-135m-cpu-sft", ["max_steps"])
    with pytest.raises(UserError, match="not a built-in recipe"):
        load_recipe("no-such-recipe")


def test_recipe_schema_forbids_extra():
    assert Recipe.model_config["extra"] == "forbid"


@pytest.mark.parametrize(
    "extra, expect",
    [
        ("lora_rank: 8\n", "lora_rank: unknown field"),
        ("max_length: long\n", "max_length"),
    ],
)
def test_cli_bad_recipe_exit_code_2(tmp_path, extra, expect):
    p = _write(tmp_path, GOOD.format(data=tmp_path, out=tmp_path / "out") + extra)
    res = runner.invoke(app, ["train", "sft", str(p)])
    assert res.exit_code == 2, res.output
    assert expect in _out(res) and "Traceback" not in _out(res)


def test_cli_missing_dataset_exit_code_2(tmp_path):
    p = _write(tmp_path, GOOD.format(data=tmp_path / "nope", out=tmp_path / "out"))
    res = runner.invoke(app, ["train", "sft", str(p)])
    assert res.exit_code == 2 and "no such directory" in _out(res)
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["train", "dpo", "smollm2-135m-cpu-dpo", "--set", f"dataset_mixer={{{tmp_path / 'empty'}: 1.0}}"])
    assert res.exit_code == 2 and "prefs/train.jsonl" in _out(res)


def test_cli_hub_dataset_offline_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    p = _write(tmp_path, GOOD.format(data="someorg/some-cai-data", out=tmp_path / "out"))
    res = runner.invoke(app, ["train", "sft", str(p)])
    assert res.exit_code == 2 and "could not be loaded from the hub" in _out(res)


def test_cli_stage_mismatch(tmp_path, cai_dataset):
    res = runner.invoke(app, ["train", "sft", "smollm2-135m-cpu-dpo", "--set", f"dataset_mixer={{{cai_dataset}: 1.0}}"])
    assert res.exit_code == 2 and "cai-bench train dpo" in _out(res)


def test_cli_lists_recipes():
    res = runner.invoke(app, ["train", "recipes"])
    assert res.exit_code == 0
    for name in ("smollm2-135m-cpu-sft", "smollm2-135m-cpu-dpo", "mistral-7b-sft", "smollm2-1.7b-dpo"):
        assert name in _out(res)
