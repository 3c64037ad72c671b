"""`cai-bench train dpo` output dir -> `cai-bench run --checkpoint DIR`, both through the CLI as a user
types them (tiny 4-bit Llama with SmolLM2's tokenizer, so both finish in seconds on a CPU)."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from cai_bench.cli import app


def test_cli_dpo_output_dir_is_a_run_checkpoint(tiny_base, tiny_sft_adapter, cai_dataset, minilm_dir, tmp_path):
    dpo = tmp_path / "dpo"
    res = CliRunner().invoke(app, [
        "train", "dpo", "smollm2-135m-cpu-dpo", "-o", str(dpo),
        "--set", f"model_name_or_path={tiny_sft_adapter}", "--set", f"dataset_mixer={{{cai_dataset}: 1.0}}",
        "--set", "max_train_samples=4", "--set", "max_steps=2", "--set", "save_steps=2", "--set", "max_length=64"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "evaluate it with: cai-bench run --checkpoint" in " ".join(res.output.split())
    assert json.loads((dpo / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_base)
    assert not (dpo / "ref").exists()  # TRL's frozen reference adapter is not part of the checkpoint

    out = tmp_path / "eval"
    res = CliRunner().invoke(app, ["run", "--checkpoint", str(dpo), "--task", "cai_south_africa", "--limit", "1",
                                   "--scorer", "similarity", "--max-new-tokens", "8", "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    con = sqlite3.connect(out / "results.sqlite")
    try:
        assert con.execute("select kind, label from checkpoints").fetchall() == [("peft", "dpo")]
        assert con.execute("select count(*) from generations").fetchall() == [(1,)]
        assert con.execute("select count(*), sum(status = 'ok') from scores").fetchall() == [(1, 1)]
    finally:
        con.close()
    assert ",dpo," in (out / "leaderboard.csv").read_text() and (out / "report" / "index.html").is_file()
