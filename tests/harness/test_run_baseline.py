"""Issue 17.5: `run` with several checkpoints prints paired deltas against a baseline
(default: the first checkpoint given), and a baseline is accepted as it was given
to `run` (relative path, spec, label), by `run` and by `report`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app


def _tiny(dest: Path, tokenizer_dir: Path, seed: int) -> Path:
    """A 2-layer Llama with random weights and SmolLM2's tokenizer: generates in milliseconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


@pytest.fixture(scope="module")
def two_models(smollm2_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two")
    _tiny(root / "tiny_a", smollm2_dir, 0)
    _tiny(root / "tiny_b", smollm2_dir, 1)
    return root


def _md(out: Path) -> str:
    return (out / "report" / "leaderboard.md").read_text(encoding="utf-8")


def test_run_prints_deltas_against_the_first_checkpoint_and_takes_paths(two_models, minilm_dir, monkeypatch):
    monkeypatch.chdir(two_models)
    args = ["run", "-c", "tiny_a", "-c", "tiny_b", "-t", "cai_south_africa", "-n", "3", "-s", "similarity",
            "--max-new-tokens", "4", "-o", "out"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "Delta vs baseline tiny_a" in first.output  # the first checkpoint given
    assert "### Delta vs baseline tiny_a" in _md(two_models / "out")

    # the baseline as given to run: a relative path
    again = CliRunner().invoke(app, [*args, "--baseline", "tiny_b"])
    assert again.exit_code == 0, again.output
    assert "Delta vs baseline tiny_b" in again.output and "new: 0 responses" in again.output
    assert "### Delta vs baseline tiny_b" in _md(two_models / "out")

    # report: a ./relative path, an absolute path, and a wrong name (one line, exit 2)
    for given in ("./tiny_b", str(two_models / "tiny_b")):
        rep = CliRunner().invoke(app, ["report", "-o", "out", "--baseline", given, "--n-boot", "50"])
        assert rep.exit_code == 0, rep.output
        assert "Delta vs baseline tiny_b" in rep.output
    bad = CliRunner().invoke(app, ["report", "-o", "out", "--baseline", "tiny_c"])
    assert bad.exit_code == 2 and "matches no checkpoint" in bad.output and "tiny_a" in bad.output

    # one checkpoint: no delta table unless asked
    single = CliRunner().invoke(app, ["run", "-c", "tiny_a", "-t", "cai_south_africa", "-n", "3", "-s", "similarity",
                                      "--max-new-tokens", "4", "-o", "solo"])
    assert single.exit_code == 0, single.output
    assert "Delta vs baseline" not in single.output


def test_default_verbosity_hides_lm_eval_git_noise(two_models, tmp_path, monkeypatch, capfd):
    """Issue 17.7: lm-eval's `git describe` must not print `fatal: not a git repository`
    at default verbosity when the working folder is not a checkout; -v shows it."""
    import shutil

    monkeypatch.chdir(tmp_path)  # not inside a git checkout
    args = ["run", "-c", str(two_models / "tiny_a"), "-t", "cai_romania", "-n", "1", "-s", "similarity",
            "--max-new-tokens", "2", "--no-report", "-o"]
    capfd.readouterr()
    res = CliRunner().invoke(app, [*args, "quiet"])
    assert res.exit_code == 0, res.output
    err = capfd.readouterr().err + res.output
    assert "not a git repository" not in err and "FutureWarning" not in err
    if shutil.which("git"):
        res = CliRunner().invoke(app, ["-v", *args, "verbose"])  # a new store: generates again
        assert res.exit_code == 0, res.output
        assert "not a git repository" in capfd.readouterr().err
