"""One content hash (`cai_bench.hashing.digest`) for every identity: each former
helper's values are pinned here, computed with that helper's own code before it
was replaced, so stores and caches keyed by them keep matching."""

from __future__ import annotations

from pathlib import Path

from cai_bench.harness import loglik
from cai_bench.harness.config import gen_hash
from cai_bench.harness.leases import WorkUnit
from cai_bench.hashing import digest
from cai_bench.validity.rowcache import text_key

NON_ASCII = {"b": [1, 2.5, None, True], "a": "Ubuntu — café", "p": Path("/tmp/x")}


def test_canonical_form_is_unchanged() -> None:
    assert digest(NON_ASCII) == "3ac8effa75e93a3f"
    assert digest({"x": 1}) == digest({"x": 1}, length=64)[:16]
    assert len(digest([], length=32)) == 32


def test_generation_config_hash_is_pinned() -> None:
    assert gen_hash(max_new_tokens=256, temperature=0.0, top_p=1.0, chat_template=True, seed=0) == "7edae05256542eb3"
    assert gen_hash(max_new_tokens=128, temperature=0.7, top_p=0.9, chat_template=False, seed=3,
                    engine="vllm") == "9a14f92d154c6a02"


def test_loglik_hashes_are_pinned() -> None:
    assert loglik.SCORER_HASH == "33e989f42a3d58fa"
    assert loglik._h(loglik.gen_config("hhh_alignment")) == "f2240cffc85ae221"
    seen = {"task": "hhh_alignment_response", "query": "Human: Café — “quotes” ünïcode?\n\nAssistant:",
            "choices": ["b", "a"]}
    assert loglik._h(seen) == "d1e3f8a30325b879"  # non-ASCII kept as UTF-8, spaced separators


def test_pipeline_stage_key_form_is_pinned() -> None:
    # pipeline/runner.py's former `_hash`: sha256(json.dumps(obj, sort_keys=True, default=str))[:16]
    assert digest(NON_ASCII, compact=False, ensure_ascii=True) == "d097e96786571fff"
    assert digest(["v1", "south_africa", None, {"max_train": 32}], compact=False,
                  ensure_ascii=True) == "aeff8919ddf704d9"
    # pipeline/stages.py's HHH items key: sha256(json.dumps(list))[:12]
    assert digest(["x-1", "x-2", "Q? café", "hhh_alignment"], length=12, compact=False,
                  ensure_ascii=True) == "73ed2eea66b9"


def test_cache_and_lease_keys_are_pinned() -> None:
    assert text_key("Prompt café", "Réponse — ok", None) == "d78f47068a1ce90dcc74cc36220a42f3"
    unit = WorkUnit.make("generate", 0, ["p1", "p2"], fingerprint="abc", task_id="t", gen_hash="g")
    assert unit.key == "1c5f0dbad57eb3caa668520ea181be0949e2fee3dee3a0aa37c6e791398b2acd"
    # harness/scorers/_starling.py's converted-copy folder name
    assert digest(["v1", "/models/starling/é.bin", 123, 1700000000, "meta-llama/Llama-2-7b-chat-hf"],
                  compact=False, ensure_ascii=True) == "f0e26b0ea503f42f"
