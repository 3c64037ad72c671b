"""Stored identities pinned to the values they had before the model contract
was unified: generation-config hashes, checkpoint fingerprints, `generate`'s
folder identity and scorer config hashes. A change here means existing result
stores and generate folders stop being reused, so it must be deliberate."""

from __future__ import annotations

import pytest

from cai_bench.hashing import digest

SAMPLING = dict(max_new_tokens=256, temperature=0.0, top_p=1.0, chat_template=True, seed=0)


@pytest.fixture(autouse=True)
def _no_endpoint_env(monkeypatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_generation_config_hashes() -> None:
    from cai_bench.harness.config import gen_hash
    from cai_bench.harness.loglik import SCORER_HASH, _h, gen_config

    assert gen_hash(**SAMPLING) == "7edae05256542eb3"
    assert gen_hash(**SAMPLING, engine="vllm") == "5dc654cb032aecaf"
    assert SCORER_HASH == "33e989f42a3d58fa"
    assert _h(gen_config("hhh_alignment")) == "f2240cffc85ae221"


def test_served_checkpoint_fingerprints() -> None:
    from cai_bench.models import resolve_checkpoint

    assert resolve_checkpoint("openai:gpt-x", openai_base_url="http://127.0.0.1:9/v1").fingerprint == "0af9e9d659676fbc"
    assert resolve_checkpoint("openai:gpt-4o-mini").fingerprint == "277dd624b26ad616"
    assert resolve_checkpoint("ollama:llama3.1:8b").fingerprint == "5669409fe439d3db"
    assert resolve_checkpoint("ollama:m", ollama_host="http://h:1").fingerprint == "9b487ea148bbe0e7"


def test_bundled_fingerprint_and_generate_identity(smollm2_dir) -> None:
    from cai_bench.generation import GenerateConfig
    from cai_bench.generation.pipeline import generator_identity
    from cai_bench.models import resolve_checkpoint

    local = resolve_checkpoint("bundled:smollm2-135m-instruct")
    assert (local.fingerprint, local.kind, local.label) == ("df5acb7eb8467b5f", "hf", "smollm2-135m-instruct")
    served = resolve_checkpoint("openai:gpt-x", openai_base_url="http://127.0.0.1:9/v1")
    cfg = GenerateConfig(constitution="c", prompts="p", model="m", out="/tmp/x")
    assert digest(cfg.identity(generator_identity(served), "south_africa")) == "26fa1663c6dfd9ba"
    assert digest(cfg.identity(generator_identity(local), "south_africa")) == "a0e201e4ebf1bf0e"
    vllm = cfg.model_copy(update={"engine": "vllm"})
    assert digest(vllm.identity(generator_identity(local), "south_africa")) == "701724b58c6978ea"


def test_judge_config_hashes() -> None:
    from cai_bench.harness.scorers import build_scorer

    assert build_scorer("judge", {"backend": "ollama"}).config_hash == "a5f1cb47f8d8414f"
    assert build_scorer("judge", {"backend": "openai"}).config_hash == "cf280d53b664375d"
    assert build_scorer("judge", {"backend": "hf"}).config_hash == "49f0e2da64d6081e"
    assert build_scorer("judge", {"backend": "hf", "engine": "vllm"}).config_hash == "c2691a48a0530833"
