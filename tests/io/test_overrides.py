"""One `KEY=VALUE` parser (`cai_bench.io.parse_assignment`) behind every flag that
takes one: `train --set`, `pipeline --set`, `run --scorer-set` and `scorers
validate --scorer-set` read values alike and reject a bad item with one message
shape (flag, item, expected form) and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.cli.cmd_scorers import _settings
from cai_bench.errors import UserError
from cai_bench.harness.config import RunConfig, apply_scorer_flags, parse_scorer_set
from cai_bench.io import parse_assignment, set_path
from cai_bench.training.recipe import load_recipe

BAD = ["novalue", "=x"]


@pytest.mark.parametrize("item, expected", [
    ("max_steps=10", ("max_steps", 10)),
    ("a.b = true", ("a.b", True)),
    ("empty=", ("empty", "")),
    ("gone=null", ("gone", None)),
    ("report_to=[tensorboard]", ("report_to", ["tensorboard"])),
    ("dataset_mixer={runs/gen/sa: 1.0}", ("dataset_mixer", {"runs/gen/sa": 1.0})),
    ("model=llama3.1:8b", ("model", "llama3.1:8b")),
    ("host=http://127.0.0.1:9", ("host", "http://127.0.0.1:9")),
    ("system=Answer: briefly", ("system", "Answer: briefly")),  # block YAML typed as a value is text
    ("item=- x", ("item", "- x")),
    ("handle=@me", ("handle", "@me")),  # not YAML at all: text
])
def test_values_are_yaml_scalars_or_flow_structures(item: str, expected: tuple) -> None:
    assert parse_assignment(item) == expected


def test_a_broken_flow_value_is_an_error() -> None:
    with pytest.raises(UserError, match=r"^--set 'm=\{a: 1': the value is not valid YAML \(.+\)$"):
        parse_assignment("m={a: 1")


@pytest.mark.parametrize("item", BAD + ["a..b=1"])
def test_library_entry_points_reject_bad_items_alike(item: str) -> None:
    with pytest.raises(UserError) as e:
        parse_assignment(item)
    assert e.value.message == f"--set {item!r}: expected KEY=VALUE"
    with pytest.raises(UserError) as e:
        load_recipe("smollm2-135m-cpu-sft", [item])
    assert e.value.message == f"--set {item!r}: expected KEY=VALUE"
    with pytest.raises(UserError) as e:
        parse_scorer_set(item)
    assert e.value.message == f"--scorer-set {item!r}: expected SCORER.KEY=VALUE"
    with pytest.raises(UserError) as e:
        _settings(["similarity"], None, [item])
    assert e.value.message == f"--scorer-set {item!r}: expected [SCORER.]KEY=VALUE"


def test_scorer_set_needs_the_scorer_in_run_only() -> None:
    assert parse_scorer_set("judge.extra.deep=x") == ("judge", ["extra", "deep"], "x")
    with pytest.raises(UserError, match=r"expected SCORER\.KEY=VALUE"):
        parse_scorer_set("backend=hf")
    assert _settings(["judge"], None, ["backend=hf", "judge.max_tokens=32", "judge.key="]) == {
        "judge": {"backend": "hf", "max_tokens": 32, "key": ""}}


@pytest.mark.parametrize("item", BAD)
def test_every_cli_flag_rejects_bad_items_with_one_line_and_exit_2(item: str, tmp_path: Path) -> None:
    runs = {
        "--set": ["train", "sft", "smollm2-135m-cpu-sft", "--set", item],
        "--set ": ["pipeline", "--task", "cai_south_africa", "--out", str(tmp_path / "p"), "--set", item],
        "--scorer-set": ["run", "-c", "bundled:smollm2-135m-instruct", "-t", "cai_south_africa",
                         "-o", str(tmp_path / "r"), "--scorer-set", item],
        "--scorer-set ": ["scorers", "validate", "similarity", "--suite", "default", "--scorer-set", item],
    }
    forms = {"train": "KEY=VALUE", "pipeline": "[SECTION.]KEY=VALUE", "run": "SCORER.KEY=VALUE",
             "scorers": "[SCORER.]KEY=VALUE"}
    for flag, args in runs.items():
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        line = f"{flag.strip()} {item!r}: expected {forms[args[0]]}"
        assert line in res.output and "Traceback" not in res.output, (args, res.output)
    assert not any(tmp_path.iterdir())  # refused before any work


def test_a_dotted_key_makes_sections_but_never_overwrites_a_value() -> None:
    raw: dict = {"split": {"max_train": 8}, "synthesize": None, "seed": 1}
    set_path(raw, ["split", "max_eval"], 4, where="--set 'split.max_eval=4'")
    set_path(raw, ["synthesize", "per_principle"], 3, where="--set 'synthesize.per_principle=3'")
    set_path(raw, ["sft", "set"], ["lr=1"], where="--set 'sft.set=[lr=1]'")
    assert raw == {"split": {"max_train": 8, "max_eval": 4}, "synthesize": {"per_principle": 3}, "seed": 1,
                   "sft": {"set": ["lr=1"]}}
    with pytest.raises(UserError) as e:
        set_path(raw, ["seed", "x"], 2, where="--set 'seed.x=2'")
    assert e.value.message == "--set 'seed.x=2': seed is not a section"


def test_nested_settings_on_a_value_are_one_line_errors(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["pipeline", "--task", "cai_south_africa", "--out", str(tmp_path / "p"),
                                   "--set", "task.x=1"])
    assert res.exit_code == 2 and "--set 'task.x=1': task is not a section" in res.output, res.output
    cfg = RunConfig.model_validate({"checkpoints": ["bundled:smollm2-135m-instruct"], "tasks": ["cai_south_africa"],
                                    "scorers": [{"id": "judge", "backend": "hf"}]})
    with pytest.raises(UserError) as e:
        apply_scorer_flags(cfg, (), ["judge.backend.x=1"])
    assert e.value.message == "--scorer-set 'judge.backend.x=1': backend is not a section"
    assert apply_scorer_flags(cfg, (), ["judge.extra.deep=x"]).scorers[0].settings == {
        "backend": "hf", "extra": {"deep": "x"}}
