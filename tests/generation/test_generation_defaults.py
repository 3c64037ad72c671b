"""The synthesis, generation and chat defaults are written once (`cai_bench.defaults`): the
`tasks synthesize` / `generate` options, their config models and the pipeline's
`synthesize:` section all show the same values."""

from __future__ import annotations

import typer

from cai_bench.cli import app
from cai_bench.defaults import CHAT, GENERATION, SYNTHESIS
from cai_bench.generation import GenerateConfig, SynthesisConfig
from cai_bench.pipeline.config import SynthesizeSettings


def _option_defaults(*path: str) -> dict[str, object]:
    group = typer.main.get_command(app)
    for name in path:
        group = group.commands[name]
    return {p.name: p.default for p in group.params}


def test_synthesize_options_and_config_share_the_defaults() -> None:
    options = _option_defaults("tasks", "synthesize")
    fields = SynthesisConfig.model_fields
    for name in ("per_principle", "max_new_tokens", "temperature", "seed", "retries"):
        assert options[name] == fields[name].default == getattr(SYNTHESIS, name), name
    assert fields["dedup_threshold"].default == SYNTHESIS.dedup_threshold
    for name in ("per_principle", "max_new_tokens", "temperature", "retries"):
        assert SynthesizeSettings.model_fields[name].default == getattr(SYNTHESIS, name), name


def test_generate_and_synthesize_share_the_chat_defaults() -> None:
    for command in (("generate",), ("tasks", "synthesize")):
        options = _option_defaults(*command)
        for name in ("batch_size", "concurrency", "timeout", "max_attempts"):
            assert options[name] == getattr(CHAT, name), (command, name)
    for model in (GenerateConfig, SynthesisConfig):
        for name in ("batch_size", "concurrency", "timeout", "max_attempts"):
            assert model.model_fields[name].default == getattr(CHAT, name), (model, name)


def test_generate_options_and_config_share_the_defaults() -> None:
    options = _option_defaults("generate")
    for name in ("selection", "seed", "top_k", "temperature", "top_p", "test_size"):
        assert options[name] == GenerateConfig.model_fields[name].default == getattr(GENERATION, name), name
