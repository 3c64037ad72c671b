"""The two example cultures (examples/cultures: Kenya, India) load, validate and split
the way the cpu-small pipeline splits them; their data-stage settings are the
small-generator ones."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.constitutions import load_constitution
from cai_bench.pipeline import build_config
from cai_bench.pipeline.stages import load_source_task, stratified_split

ROOT = Path(__file__).resolve().parents[2]
CULTURES = ("kenya", "india")


@pytest.mark.parametrize("name", CULTURES)
def test_example_culture_loads_and_splits(name):
    folder = ROOT / "examples" / "cultures" / name
    const = load_constitution(str(folder / "constitution.yaml"))
    assert const.id == name and 5 <= len(const.principles) <= 6 and const.source and const.license
    cfg = build_config({"constitution": str(folder / "constitution.yaml"), "prompts": str(folder / "prompts.jsonl"),
                        "profile": "cpu-small"}, source="test")
    task, _ = load_source_task(cfg)
    assert task.analyses == ["refusal"]  # the prompts state `expect`: the eval judges refusal on them
    prompts = task.prompts
    assert len(prompts) == 96 and len({p.id for p in prompts}) == 96 and len({p.prompt for p in prompts}) == 96
    per = Counter(p.principle_id for p in prompts)
    assert set(per) == set(const.principle_ids) and min(per.values()) >= 16
    expects = Counter(p.expect for p in prompts)
    assert expects["refuse"] >= 60 and expects["comply"] >= 25  # red-team requests and ones to engage with
    train, held = stratified_split(prompts, fraction=cfg.split.eval_fraction, seed=cfg.split.seed,
                                   max_train=cfg.split.max_train, max_eval=cfg.split.max_eval)
    assert len(train) == 64 and len(held) >= 30 and not {p.id for p in train} & {p.id for p in held}
    assert {p.principle_id for p in train} == {p.principle_id for p in held} == set(const.principle_ids)
    assert cfg.data_source == "generate" and cfg.generator == "bundled:smollm2-135m-instruct"
    assert (cfg.data.demonstrations, cfg.data.answer_only, cfg.data.retries) == (2, True, 2)


def test_example_constitutions_validate():
    files = [str(ROOT / "examples" / "cultures" / n / "constitution.yaml") for n in CULTURES]
    res = CliRunner().invoke(app, ["constitutions", "validate", *files])
    assert res.exit_code == 0, res.output


def test_prompts_without_expect_get_no_refusal_analysis(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "a", "prompt": "Is devolution working?", "principle_id": "national_unity_and_devolution"}\n')
    cfg = build_config({"constitution": str(ROOT / "examples/cultures/kenya/constitution.yaml"),
                        "prompts": str(prompts)}, source="test")
    assert load_source_task(cfg)[0].analyses == []
