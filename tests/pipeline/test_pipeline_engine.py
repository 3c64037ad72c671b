"""`eval.engine` in the pipeline config: its default, a bad value, which stage keys
it moves (a finished eval stays valid under `auto`/`hf`; `vllm` redoes eval and
report only; `data.engine: vllm` redoes the data and what follows), and the vLLM
server computing in the student's own dtype as transformers does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cai_bench.errors import UserError
from cai_bench.pipeline.config import build_config
from cai_bench.pipeline.engine import checkpoint_dtype, eval_vllm_settings, planned_new_tokens
from cai_bench.pipeline.runner import stage_keys


def _cfg(**over):
    return build_config({"task": "cai_south_africa", **over})


def test_engine_defaults_to_auto_and_a_bad_value_names_the_field() -> None:
    assert _cfg().eval.engine == "auto" and _cfg().data.engine == "hf"
    with pytest.raises(UserError, match=r"eval\.engine: .*'auto', 'hf' or 'vllm'"):
        _cfg(eval={"engine": "fast"})
    with pytest.raises(UserError, match=r"eval\.vllm\.dtyp: unknown field"):
        _cfg(eval={"vllm": {"dtyp": "float32"}})


def test_only_an_explicit_vllm_moves_the_eval_key() -> None:
    auto, hf, vllm = (stage_keys(_cfg(eval={"engine": e})) for e in ("auto", "hf", "vllm"))
    assert auto == hf  # a finished eval stays valid whichever engine `auto` picks
    assert stage_keys(_cfg(eval={"engine": "auto", "vllm": {"dtype": "bfloat16"}})) == auto
    assert {k for k in auto if auto[k] != vllm[k]} == {"eval", "report"}
    data_vllm = stage_keys(_cfg(data={"engine": "vllm"}))
    assert {k for k in auto if auto[k] != data_vllm[k]} == {"data", "sft", "dpo", "eval", "report"}


def test_vllm_computes_in_the_checkpoints_own_dtype(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"torch_dtype": "float32"}))
    assert checkpoint_dtype(str(tmp_path)) == "float32"
    (tmp_path / "config.json").write_text(json.dumps({"dtype": "bfloat16"}))
    assert checkpoint_dtype(str(tmp_path)) == "bfloat16"
    assert checkpoint_dtype(str(tmp_path / "missing")) == "auto"
    (tmp_path / "model.safetensors").write_bytes(b"0")  # a checkpoint folder as far as resolving goes
    cfg = _cfg(student=str(tmp_path))
    assert eval_vllm_settings(cfg).dtype == "bfloat16"
    assert eval_vllm_settings(_cfg(student=str(tmp_path), eval={"vllm": {"dtype": "float16"}})).dtype == "float16"


def test_planned_work_counts_three_checkpoints_over_every_prompt() -> None:
    cfg = _cfg()  # cpu-small: 96 new tokens, the other culture and xstest at 16 prompts each
    assert planned_new_tokens(cfg, 32) == 3 * (32 + 2 * 16) * 96
    assert planned_new_tokens(_cfg(eval={"limit": None}), 32) is None  # whole regression tasks: not known
