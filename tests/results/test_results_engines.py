"""The engine in the report: checkpoints answered by different engines (HF, a
vLLM server, an API server) under the same sampling are ranked together, each
checkpoint named with its engine; a checkpoint answered by two engines is
shown with the newest one's answers and the other listed as left out."""

from __future__ import annotations

import time
from pathlib import Path

from cai_bench.harness.config import gen_hash
from cai_bench.reports import tables
from cai_bench.results import Store, load_results_with_extras
from test_results_identity import _score_all, _task, _unit, _url

SAMPLING = {"max_new_tokens": 64, "temperature": 0.0, "top_p": 1.0, "chat_template": True, "seed": 0}


def test_engines_are_compared_under_one_sampling_and_named_per_checkpoint(tmp_path: Path) -> None:
    g_hf, g_vl = gen_hash(**SAMPLING), gen_hash(**SAMPLING, engine="vllm")
    assert g_hf != g_vl  # the engine is part of a generation's identity
    store = Store(_url(tmp_path))
    run = store.start_run("{}", 0, "test")
    v = {"a": ("q", "i", "c")}
    _task(store, v)
    for fp, kind in (("fpA", "hf"), ("fpB", "peft"), ("fpC", "openai")):
        store.upsert_checkpoint(run, fingerprint=fp, spec=fp, kind=kind, label=fp[-1], metadata={})
    store.upsert_gen_config(g_hf, dict(SAMPLING))
    store.upsert_gen_config(g_vl, {**SAMPLING, "engine": "vllm"})
    for fp, gh in (("fpA", g_hf), ("fpC", g_hf), ("fpB", g_vl), ("fpA", g_vl)):  # A: vLLM answers newest
        time.sleep(0.01)
        store.insert_generations(run, _unit(fp, gh, v), [("a", f"{fp}-{gh[:4]}", 0.1)])
        _score_all(store, run, _unit(fp, gh, v), "h1", 0.5)
    df, extras = load_results_with_extras(_url(tmp_path))
    assert sorted(set(zip(df["label"], df["gen_hash"]))) == [("A", g_vl), ("B", g_vl), ("C", g_hf)]
    assert [(c["label"], c["kind"], c["engine"]) for c in extras.checkpoints] == [
        ("A", "hf", "vllm"), ("B", "peft", "vllm"), ("C", "openai", "openai server")]
    gen = [c for c in extras.configs if c["kind"] == "generation"]
    assert len(gen) == 1 and gen[0]["covered"] == 3 and gen[0]["engine"] == "openai server, vllm"
    assert [(x["checkpoint"], x["hash"], x["missing"]) for x in extras.left_out] == [("A", g_hf, False)]
    assert "another engine" in extras.left_out[0]["reason"]
    md = tables.to_markdown(tables.checkpoints_table(extras.checkpoints))
    assert "| B | peft | vllm |" in md
    assert "engine=openai server, vllm" in tables.to_markdown(tables.configs_table(extras.configs))
    store.close()
