"""Fixtures for pipeline tests: tiny in-process models with SmolLM2's tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def hhh_sample() -> Path:
    return DATA / "hhh_sample.jsonl"


@pytest.fixture(scope="session")
def tiny_model(smollm2_dir, tmp_path_factory) -> Path:
    """A 2-layer, 64-wide Llama with SmolLM2's tokenizer and chat template (random weights)."""
    from tiny_models import build_tiny_llama

    return build_tiny_llama(smollm2_dir, tmp_path_factory.mktemp("tiny") / "base", max_position_embeddings=2048)
