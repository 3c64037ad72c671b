"""`report_to`: a missing TensorBoard (the GPU recipes' default) is dropped with one warning;
other missing reporters stop the run before any model loads."""

from __future__ import annotations

import importlib.util
import logging

import pytest

from cai_bench.errors import UserError
from cai_bench.training import load_recipe, train
from cai_bench.training.runner import _check_report_to

_real_find_spec = importlib.util.find_spec


@pytest.fixture()
def no_tensorboard(monkeypatch, caplog):
    """Hide tensorboard/tensorboardX/wandb whether or not they are installed; capture our warnings."""
    hidden = {"tensorboard", "tensorboardX", "wandb"}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name in hidden else _real_find_spec(name, *a, **k))
    monkeypatch.setattr(logging.getLogger("cai_bench"), "propagate", True)  # the CLI's Rich handler turns it off
    caplog.set_level(logging.WARNING, logger="cai_bench.training")
    return caplog


def _tb_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "tensorboard" in r.getMessage()]


def test_missing_tensorboard_is_dropped_with_one_warning(no_tensorboard):
    r = load_recipe("mistral-7b-sft", ["report_to=[tensorboard, tensorboard]"])
    assert _check_report_to(r) == []
    assert len(_tb_warnings(no_tensorboard)) == 1 and "pip install tensorboard" in _tb_warnings(no_tensorboard)[0]


def test_other_missing_reporter_is_still_an_error(no_tensorboard):
    with pytest.raises(UserError, match="pip install wandb"):
        _check_report_to(load_recipe("mistral-7b-sft", ["report_to=[tensorboard, wandb]"]))


def test_gpu_recipe_reporting_trains_without_tensorboard(no_tensorboard, tiny_base, cai_dataset, tmp_path):
    """A real (tiny) run with the GPU recipes' `report_to: [tensorboard]`: it trains, and
    cai_bench.json records the reporters actually used."""
    assert load_recipe("mistral-7b-sft").report_to == ["tensorboard"]
    r = load_recipe("smollm2-135m-cpu-sft", [
        f"model_name_or_path={tiny_base}", f"dataset_mixer={{{cai_dataset}: 1.0}}", "dataset_splits=[train]",
        "max_train_samples=4", "max_steps=1", "save_steps=1", "max_length=64", "report_to=[tensorboard]",
        f"output_dir={tmp_path / 'sft'}"])
    res = train("sft", r)
    assert res.metrics["global_step"] == 1
    assert res.metadata["recipe"]["report_to"] == []
    assert len(_tb_warnings(no_tensorboard)) == 1
    assert not list((tmp_path / "sft").rglob("events.out.tfevents*"))
