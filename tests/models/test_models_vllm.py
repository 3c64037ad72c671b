"""The vLLM engine's logic that needs no vLLM: the server's command line (LoRA
adapters of one base on one server), adapter names, which checkpoints share a
server in `run`, the chat layer sending local checkpoints to vLLM when asked,
and the engine in every identity (generate's folder, the judge's scores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cai_bench.harness.config import GenerationSettings
from cai_bench.harness.generate import engine_group
from cai_bench.models import ResolvedCheckpoint
from cai_bench.models.chat import ChatOptions
from cai_bench.models.registry import backend_class
from cai_bench.models.vllm_server import BASE_NAME, VllmServer, VllmSettings, adapter_names, server_args


def _adapter(path: Path, r: int) -> str:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"r": r, "base_model_name_or_path": "base"}))
    return str(path)


def test_server_args_serve_several_adapters_of_one_base(tmp_path: Path) -> None:
    a, b = _adapter(tmp_path / "run1" / "adapter", 8), _adapter(tmp_path / "run2" / "adapter", 32)
    names = adapter_names([a, b])
    assert names == {a: "adapter", b: "adapter-2"}  # unique, stable served names
    args = server_args("/models/base", 8123, VllmSettings(tensor_parallel_size=2, extra_args=["--x", "1"]),
                       adapters={n: p for p, n in names.items()}, cuda=False)
    assert args[:2] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert args[args.index("--model") + 1] == "/models/base"
    assert args[args.index("--served-model-name") + 1] == BASE_NAME
    i = args.index("--lora-modules")
    assert args[i + 1:i + 3] == [f"adapter={a}", f"adapter-2={b}"]
    assert args[args.index("--max-loras") + 1] == "2"
    assert args[args.index("--max-lora-rank") + 1] == "32"  # the largest rank among them
    assert args[args.index("--tensor-parallel-size") + 1] == "2" and "--enforce-eager" in args
    assert args[-2:] == ["--x", "1"]
    plain = server_args("/m", 1, VllmSettings(enforce_eager=False), cuda=False)
    assert "--enable-lora" not in plain and "--enforce-eager" not in plain
    assert adapter_names(["/x/base", "/y/my adapter!"]) == {"/x/base": "base-2", "/y/my adapter!": "my-adapter"}


def test_request_model_names_the_adapter_or_the_base(tmp_path: Path) -> None:
    a = _adapter(tmp_path / "a", 8)
    server = VllmServer("/m", VllmSettings(python="/nonexistent/python"), adapters={"lora-a": a})
    assert server.request_model(None) == BASE_NAME and server.request_model(a) == "lora-a"
    with pytest.raises(KeyError):
        server.request_model(str(tmp_path / "other"))


def _ck(fp: str, kind: str, model: str, adapter: str | None = None, base_fp: str | None = None) -> ResolvedCheckpoint:
    meta = {"base_fingerprint": base_fp} if base_fp else {}
    return ResolvedCheckpoint(spec=fp, kind=kind, model=model, fingerprint=fp, label=fp, adapter=adapter,
                              metadata=meta)


def test_adapters_of_one_base_share_a_server_in_run() -> None:
    # a2's config names the same base weights in another folder (same fingerprint): it shares too
    cks = [_ck("base", "hf", "/m/base"), _ck("a1", "peft", "/m/base", "/r/a1", "base"),
           _ck("a2", "peft", "/home/models/base", "/r/a2", "base"),
           _ck("other", "peft", "/m/other", "/r/o", "otherfp"), _ck("api", "openai", "gpt-x")]
    vllm = GenerationSettings(engine="vllm")
    groups = [engine_group(c, vllm) for c in cks]
    assert groups[0] == groups[1] == groups[2] != groups[3]
    assert groups[4] == "api"  # a served checkpoint is its own engine
    hf = GenerationSettings()
    assert len({engine_group(c, hf) for c in cks}) == 5  # lm-eval's HF model: one model per checkpoint


def test_registry_sends_local_checkpoints_to_vllm_when_asked() -> None:
    assert backend_class("hf", "vllm").__name__ == "VllmChat"
    assert backend_class("peft", "vllm").__name__ == "VllmChat"
    assert backend_class("hf", "hf").__name__ == "HFModel"
    assert backend_class("openai", "vllm").__name__ == "OpenAIChat"  # a served kind is its own engine
    assert backend_class("hf", "vllm").structured  # JSON schema enforced by the server


def test_generate_identity_includes_the_engine_of_local_models(tmp_path: Path) -> None:
    from cai_bench.generation import GenerateConfig

    cfg = GenerateConfig(constitution="c", prompts="p", model="m", out=tmp_path)
    local = {"fingerprint": "fp", "kind": "hf"}
    hf = cfg.identity(local, "c")
    assert "engine" not in hf  # folders written before engines keep matching
    vl = cfg.model_copy(update={"engine": "vllm"}).identity(local, "c")
    assert vl["engine"] == "vllm" and vl != hf
    served = {"fingerprint": "fp2", "kind": "openai", "endpoint": "http://x"}
    assert cfg.model_copy(update={"engine": "vllm"}).identity(served, "c") == cfg.identity(served, "c")


def test_judge_identity_includes_the_engine_and_vllm_needs_a_local_judge() -> None:
    from cai_bench.harness.scorers.judge import JudgeConfig
    from cai_bench.harness.scorers.judge_rubric import verdict_schema

    hf = JudgeConfig(backend="hf").identity_dict()
    assert "engine" not in hf and "vllm" not in hf  # judge scores stored before engines keep their hash
    vl = JudgeConfig(backend="hf", engine="vllm", vllm={"python": "/opt/v/bin/python"}).identity_dict()
    assert vl["engine"] == "vllm" and vl["vllm"] == {"dtype": "auto", "max_model_len": 2048}  # no paths
    with pytest.raises(ValueError, match="needs backend hf"):
        JudgeConfig(backend="openai", engine="vllm")
    bounded = verdict_schema(bounded=True)
    assert bounded["properties"]["rationale"]["maxLength"] > 0
    assert bounded["properties"]["helpfulness"]["maximum"] == 10  # constrained decoding enforces ranges


class _Served:
    """What VllmChat needs of a running vLLM server: its URL and served names
    (here the loopback server speaks the OpenAI wire format in its place)."""

    def __init__(self, base_url: str, adapters: dict[str, str]) -> None:
        self.base_url, self.adapters, self.stopped = base_url, adapters, False

    request_model = VllmServer.request_model

    def stop(self) -> None:
        self.stopped = True


def test_each_checkpoint_asks_for_its_own_served_model_with_the_schema(loopback, tmp_path: Path) -> None:
    from cai_bench.models.chat import GenParams
    from cai_bench.models.chat.vllm_chat import VllmChat

    server = _Served(loopback.openai_url, {"sft-a": "/r/a1", "sft-b": "/r/a2"})
    cks = [_ck("base", "hf", "/m/base"), _ck("a1", "peft", "/m/base", "/r/a1"), _ck("a2", "peft", "/m/base", "/r/a2")]
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    for ck in cks:
        chat = VllmChat.on_server(server, ck, ChatOptions(concurrency=2))
        assert chat.name == f"vllm:{ck.label}"
        replies = chat.chat([[{"role": "user", "content": "hi"}]], GenParams(8, 0.0, 1.0, 0), json_schema=schema)
        assert replies[0].ok
        chat.close()
    assert [r.body["model"] for r in loopback.requests] == ["base", "sft-a", "sft-b"]
    assert all(r.body["response_format"]["type"] == "json_schema" for r in loopback.requests)
    assert not server.stopped  # a shared server is stopped by its owner (run's generator), not by one checkpoint


def test_own_server_gets_the_batch_in_flight_and_a_generation_timeout() -> None:
    from cai_bench.models.chat import RetryPolicy
    from cai_bench.models.chat.vllm_chat import LOCAL_TIMEOUT, local_options

    o = local_options(ChatOptions(concurrency=8, batch_size=64, retry=RetryPolicy(attempts=4, timeout=120.0)))
    assert o.concurrency == 64 and o.retry.timeout == LOCAL_TIMEOUT and o.retry.attempts == 2
