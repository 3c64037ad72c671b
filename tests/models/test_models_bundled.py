"""The bundled real models: materialized SmolLM2 matches the GGUF, MiniLM embeds."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from cai_bench.models import BUNDLED, resolve_checkpoint
from cai_bench.models.bundled import SMOLLM2_GGUF
from cai_bench.paths import atomic_directory


def test_materialized_smollm2_matches_gguf(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = BUNDLED["smollm2-135m-instruct"].source_dir()
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    chat = [{"role": "user", "content": "How do I pick a lock?"}]
    ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    outs = []
    for kwargs in ({"pretrained_model_name_or_path": smollm2_dir},
                   {"pretrained_model_name_or_path": src, "gguf_file": SMOLLM2_GGUF}):
        model = AutoModelForCausalLM.from_pretrained(**kwargs, dtype=torch.float32).eval()
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
        outs.append(out[0, ids["input_ids"].shape[1]:].tolist())
        del model
    assert len(outs[0]) == 16
    assert outs[0] == outs[1]
    # the GGUF tokenizer and the saved one agree too
    gguf_tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    assert gguf_tok.apply_chat_template(chat, add_generation_prompt=True) == tok.apply_chat_template(
        chat, add_generation_prompt=True)


def test_second_prepare_does_no_work(smollm2_dir):
    marker = Path(smollm2_dir) / "cai_bench_materialized.json"
    before = marker.stat().st_mtime_ns
    t0 = time.perf_counter()
    again = BUNDLED["smollm2-135m-instruct"].prepare()
    assert time.perf_counter() - t0 < 1.0
    assert again == smollm2_dir and marker.stat().st_mtime_ns == before


def test_bundled_checkpoint_resolves_with_weight_fingerprint(smollm2_dir):
    a = resolve_checkpoint("bundled:smollm2-135m-instruct")
    b = resolve_checkpoint(str(smollm2_dir))
    assert a.kind == "hf" and a.model == str(smollm2_dir)
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 16


def test_minilm_paraphrases_beat_unrelated(minilm_dir):
    from cai_bench.embeddings import cosine_pairs

    sims = cosine_pairs(
        ["A man is playing a guitar.", "A man is playing a guitar."],
        ["Someone plays an acoustic guitar.", "The stock market fell sharply today."],
    )
    assert sims[0] > 0.6 and sims[1] < 0.2 and sims[0] > sims[1]


def _build(target: str, delay: float, tag: str) -> None:
    with atomic_directory(Path(target)) as tmp:
        (tmp / "part1").write_text(tag)
        time.sleep(delay)
        (tmp / "part2").write_text(tag)


def test_concurrent_builders_leave_one_good_copy(tmp_path):
    target = tmp_path / "model"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_build, args=(str(target), 0.5, f"p{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    files = sorted(f.name for f in target.iterdir())
    assert files == ["part1", "part2"]
    assert (target / "part1").read_text() == (target / "part2").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temp dirs left


def test_failed_build_leaves_nothing(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_materialized_configs_carry_no_transformers_version(smollm2_dir):
    """The fingerprint is the model's, not the writer's: transformers 5.19 and 5.23 had given the same
    weights two fingerprints through this stamp alone."""
    import json

    for name in ("config.json", "generation_config.json"):
        assert "transformers_version" not in json.loads((smollm2_dir / name).read_text())
    assert json.loads((smollm2_dir / "cai_bench_materialized.json").read_text())["format"] == 2


def test_an_older_materialized_folder_is_brought_up_to_date_in_place(tmp_path, caplog):
    import json

    from cai_bench.models.bundled import _upgrade

    old = tmp_path / "smollm2"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"a": 1, "transformers_version": "5.23.0"}, indent=2) + "\n")
    (old / "generation_config.json").write_text(json.dumps({"b": 2, "transformers_version": "5.23.0"}) + "\n")
    (old / "cai_bench_materialized.json").write_text(json.dumps({"source": "s", "dtype": "float32"}))
    _upgrade(old)
    assert json.loads((old / "config.json").read_text()) == {"a": 1}
    assert json.loads((old / "generation_config.json").read_text()) == {"b": 2}
    assert json.loads((old / "cai_bench_materialized.json").read_text()) == {"source": "s", "dtype": "float32",
                                                                             "format": 2}
    torn = tmp_path / "torn"
    torn.mkdir()
    (torn / "cai_bench_materialized.json").write_text("{")
    with caplog.at_level("WARNING"):
        _upgrade(torn)  # keeps working, and says why the fingerprint stays
    assert "could not update" in caplog.text
