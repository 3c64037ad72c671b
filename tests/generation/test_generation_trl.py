"""`cai-bench generate` writes splits that `datasets` loads and TRL's
SFTTrainer/DPOTrainer (with the bundled SmolLM2) accept. The data comes from the
OpenAI-compatible loopback server to keep this fast; the in-process HF backend
has its own tests in test_generation_hf.py."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from loopback import Loopback


@pytest.fixture(scope="module")
def hf_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("cai") / "data"
    with Loopback() as srv, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", srv.openai_url)
        res = CliRunner().invoke(app, [
            "generate", "--constitution", "south_africa", "--prompts", "cai_south_africa",
            "--model", "openai:loopback", "--n", "6", "--test-size", "0.34", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_layout_and_columns(hf_data):
    columns = {"init_prompt", "init_response", "critic_prompt", "critic_response", "revision_prompt",
               "revision_response", "principle_id", "constitution", "selection", "generator", "messages",
               "chosen", "rejected"}
    recs = [json.loads(x) for x in (hf_data / "records.jsonl").read_text().splitlines()]
    assert len(recs) == 6 and columns <= set(recs[0])
    assert all(r["finish_reasons"]["revision"] == "stop" for r in recs)
    info = json.loads((hf_data / "dataset_info.json").read_text())
    assert info["model"]["spec"] == "openai:loopback" and info["constitution"] == "south_africa"
    kept = info["counts"]["kept"]
    assert kept == 6
    for kind in ("sft", "prefs"):
        for split in ("train", "test"):
            assert (hf_data / kind / f"{split}.jsonl").is_file()
    assert info["splits"]["sft"]["train"] + info["splits"]["sft"]["test"] == kept


def _load(hf_data, kind):
    from datasets import load_dataset

    return load_dataset("json", data_files={s: str(hf_data / kind / f"{s}.jsonl") for s in ("train", "test")})


def test_sft_split_accepted_by_trl(hf_data, smollm2_dir, tmp_path):
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    ds = _load(hf_data, "sft")
    assert ds["train"].column_names == ["messages"]
    trainer = SFTTrainer(
        model=str(smollm2_dir), processing_class=AutoTokenizer.from_pretrained(smollm2_dir),
        train_dataset=ds["train"], eval_dataset=ds["test"],
        args=SFTConfig(output_dir=str(tmp_path), use_cpu=True, max_steps=1, per_device_train_batch_size=1,
                       report_to=[], max_length=256, dataset_num_proc=None),
    )
    assert "input_ids" in trainer.train_dataset.column_names
    assert trainer.train_dataset.num_rows == ds["train"].num_rows


def test_prefs_split_accepted_by_trl(hf_data, smollm2_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    ds = _load(hf_data, "prefs")
    assert set(ds["train"].column_names) == {"prompt", "chosen", "rejected"}
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    trainer = DPOTrainer(
        model=model, processing_class=AutoTokenizer.from_pretrained(smollm2_dir),
        train_dataset=ds["train"], eval_dataset=ds["test"],
        args=DPOConfig(output_dir=str(tmp_path), use_cpu=True, max_steps=1, per_device_train_batch_size=1,
                       report_to=[], max_length=256),
    )
    cols = trainer.train_dataset.column_names
    assert any("chosen" in c and "ids" in c for c in cols), cols
