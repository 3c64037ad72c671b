"""Response generation for the model under test.

One `Generator` per checkpoint answers chunks of prompts with the model the
registry opens for it (`cai_bench.models.open_checkpoint`, the one model
contract). A model that wraps an lm-eval LM (the in-process HF backend: local
dirs, hub snapshots, PEFT adapters) generates through lm-eval: each chunk is
exported as its own lm-eval task folder, only the missing prompts,
`with_metric=False`, run with `predict_only=True`; lm-eval's request cache is
never used (it is not keyed by model). Any other model (served
`openai:`, `ollama:`, a plugin's kind) is asked through `chat`, whose retry
policy and per-prompt errors it keeps: a prompt that fails for good is an
`Answer` with `error` set, the others go on.
"""

from __future__ import annotations

import logging
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cai_bench.errors import UserError

if TYPE_CHECKING:
    from cai_bench.harness.config import EndpointSettings, GenerationSettings
    from cai_bench.models import ResolvedCheckpoint
    from cai_bench.tasks import Task

log = logging.getLogger("cai_bench.harness")


@dataclass(frozen=True)
class Sampling:
    """The resolved sampling for one task (run settings over task defaults)."""

    max_new_tokens: int
    temperature: float
    top_p: float
    chat_template: bool
    seed: int

    def lm_eval_kwargs(self) -> dict[str, Any]:
        from cai_bench.tasks import lm_eval_gen_kwargs

        return lm_eval_gen_kwargs(self.max_new_tokens, self.temperature, self.top_p)


def resolve_sampling(task: "Task", gen: "GenerationSettings", seed: int) -> Sampling:
    d = task.generation
    return Sampling(
        max_new_tokens=gen.max_new_tokens if gen.max_new_tokens is not None else d.max_new_tokens,
        temperature=gen.temperature if gen.temperature is not None else d.temperature,
        top_p=gen.top_p if gen.top_p is not None else d.top_p,
        chat_template=gen.chat_template,
        seed=seed,
    )


@dataclass(frozen=True)
class Answer:
    """One prompt's response (seconds per prompt), or the error that kept it from having one."""

    prompt_id: str
    text: str
    seconds: float
    error: str | None = None


class Generator(ABC):
    """A loaded model under test; `generate` answers one chunk of a task's prompts."""

    @abstractmethod
    def generate(self, task: "Task", prompt_ids: Sequence[str], sampling: Sampling) -> list[Answer]:
        """One `Answer` per prompt id, in order."""

    def close(self) -> None:
        """Free the model so the next checkpoint (or a scorer) can load."""

    def use(self, ckpt: "ResolvedCheckpoint") -> None:
        """Answer for `ckpt` from now on; only a generator serving several checkpoints
        (a vLLM server with several adapters of one base) has anything to switch."""


class LmEvalGenerator(Generator):
    """Runs chunks through `lm_eval.simple_evaluate` with the model's lm-eval LM."""

    def __init__(self, model: Any, batch_size: int) -> None:
        self.model = model
        self.lm = model.lm_eval_lm()
        self.batch_size = batch_size

    def generate(self, task: "Task", prompt_ids: Sequence[str], sampling: Sampling) -> list[Answer]:
        from lm_eval import simple_evaluate
        from lm_eval.tasks import TaskManager

        from cai_bench.console import quiet_lm_eval
        from cai_bench.tasks import export_lm_eval

        quiet_lm_eval()

        wanted = set(prompt_ids)
        chunk_task = task.model_copy(update={"generation": task.generation.model_copy(update={
            "max_new_tokens": sampling.max_new_tokens, "temperature": sampling.temperature,
            "top_p": sampling.top_p})})
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="cai-bench-chunk-") as tmp:
            names = export_lm_eval([chunk_task], Path(tmp), subsets={task.id: list(prompt_ids)}, with_metric=False)
            name = names[task.id]
            result = simple_evaluate(
                model=self.lm,
                tasks=[name],
                task_manager=TaskManager(include_path=tmp, include_defaults=False),
                batch_size=self.batch_size,
                apply_chat_template=sampling.chat_template,
                log_samples=True,
                predict_only=True,
                use_cache=None,
                cache_requests=False,
                gen_kwargs=sampling.lm_eval_kwargs(),
                random_seed=sampling.seed,
                numpy_random_seed=sampling.seed,
                torch_random_seed=sampling.seed,
                fewshot_random_seed=sampling.seed,
                bootstrap_iters=0,
            )
        if not result or name not in result.get("samples", {}):
            raise RuntimeError(f"lm-eval returned no samples for {name}")
        out: dict[str, str] = {}
        for sample in result["samples"][name]:
            pid = str(sample["doc"]["id"])
            resps = sample.get("resps") or [[""]]
            first = resps[0]
            out[pid] = str(first[0] if isinstance(first, (list, tuple)) else first)
        missing = wanted - set(out)
        if missing:
            raise RuntimeError(f"lm-eval returned no response for {sorted(missing)[:5]} of {task.id}")
        per = (time.perf_counter() - started) / max(len(prompt_ids), 1)
        return [Answer(pid, out[pid], per) for pid in prompt_ids]

    def close(self) -> None:
        self.lm = None
        self.model.close()


class ChatGenerator(Generator):
    """Models without an lm-eval LM (`openai:`, `ollama:`, plugins' kinds) through
    `chat`: one user turn per prompt, sent concurrently under the shared retry policy."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def generate(self, task: "Task", prompt_ids: Sequence[str], sampling: Sampling) -> list[Answer]:
        from cai_bench.models.chat import GenParams

        convs = [[{"role": "user", "content": task.prompt(pid).prompt}] for pid in prompt_ids]
        params = GenParams(sampling.max_new_tokens, sampling.temperature, sampling.top_p, sampling.seed)
        started = time.perf_counter()
        replies = self.model.chat(convs, params)
        per = (time.perf_counter() - started) / max(len(prompt_ids), 1)
        return [Answer(pid, r.text, per, r.error) for pid, r in zip(prompt_ids, replies)]

    def close(self) -> None:
        self.model.close()


def engine_group(ckpt: "ResolvedCheckpoint", gen: "GenerationSettings") -> str:
    """Checkpoints with the same group are answered by one loaded engine: on vLLM
    a base and all its PEFT adapters share one server (LoRA, unmerged); anything
    else is a group of its own (its fingerprint). The base is known by its
    fingerprint (content), so an adapter whose config names the same weights in
    another folder (e.g. `bundled:` materialized elsewhere) still shares."""
    if ckpt.is_local and gen.engine == "vllm":
        base = ckpt.metadata.get("base_fingerprint") if ckpt.adapter else ckpt.fingerprint
        return f"vllm:{base or ckpt.model}"
    return ckpt.fingerprint


def load_generator(ckpt: "ResolvedCheckpoint", gen: "GenerationSettings",
                   openai: "EndpointSettings", ollama: "EndpointSettings",
                   group: Sequence["ResolvedCheckpoint"] = ()) -> Generator:
    """Open the model under test once for this checkpoint, through the model registry."""
    from cai_bench.harness.config import EndpointSettings
    from cai_bench.models import open_checkpoint
    from cai_bench.models.chat import ChatOptions, RetryPolicy

    if ckpt.is_local and gen.engine == "vllm":
        return _vllm_generator(ckpt, gen, group)
    if not ckpt.is_local and not gen.chat_template:
        raise UserError(f"{ckpt.spec}: served checkpoints need the chat template (generation.chat_template: true)")
    endpoint = {"openai": openai, "ollama": ollama}.get(ckpt.kind) or EndpointSettings()
    options = ChatOptions(base_url=endpoint.base_url, api_key=endpoint.api_key, concurrency=endpoint.num_concurrent,
                          retry=RetryPolicy(attempts=endpoint.max_attempts, timeout=endpoint.timeout),
                          batch_size=gen.batch_size, device=gen.device, dtype=gen.dtype, engine=gen.engine)
    model = open_checkpoint(ckpt, options, load=False)
    try:
        if model.lm_eval_lm() is not None:  # the ecosystem path: lm-eval generates for in-process weights
            return LmEvalGenerator(model, gen.batch_size)
        if not gen.chat_template:
            raise UserError(f"{ckpt.spec}: its backend only chats, so it needs the chat template "
                            "(generation.chat_template: true)")
        model.load()
    except BaseException:
        model.close()
        raise
    return ChatGenerator(model)


class VllmGenerator(ChatGenerator):
    """`generation.engine: vllm`: one vLLM server for a base model and the PEFT
    adapters of it in the run (LoRA, not merged; `--max-loras` = how many), asked
    through the chat layer's OpenAI backend with `batch_size` requests in flight;
    `use(ckpt)` picks the served model; closing stops the server unless it was
    borrowed (`server` None: a server `keep_serving` keeps for several runs)."""

    def __init__(self, models: dict[str, Any], server: Any, first: str) -> None:
        super().__init__(models[first])
        self.models, self.server = models, server

    def use(self, ckpt: "ResolvedCheckpoint") -> None:
        self.model = self.models[ckpt.fingerprint]

    def close(self) -> None:
        try:
            for model in self.models.values():
                model.close()
        finally:
            if self.server is not None:
                self.server.stop()


def _vllm_generator(ckpt: "ResolvedCheckpoint", gen: "GenerationSettings",
                    group: Sequence["ResolvedCheckpoint"] = ()) -> Generator:
    from cai_bench.models.chat import ChatOptions, RetryPolicy
    from cai_bench.models.chat.vllm_chat import local_options
    from cai_bench.models.registry import backend_class
    from cai_bench.models.vllm_server import VllmServer, adapter_names, kept_server

    members = [c for c in [ckpt, *group] if engine_group(c, gen) == engine_group(ckpt, gen)]
    members = list({c.fingerprint: c for c in members}.values())
    if not gen.chat_template:
        raise UserError(f"{ckpt.spec}: generation.engine vllm needs the chat template (generation.chat_template: true)")
    names = adapter_names(sorted({c.adapter for c in members if c.adapter}))
    server = borrowed = kept_server(ckpt.model, names, gen.vllm)
    if server is None:
        server = VllmServer(ckpt.model, gen.vllm, adapters={name: path for path, name in names.items()})
        server.start()
    options = local_options(ChatOptions(batch_size=gen.batch_size, retry=RetryPolicy(attempts=2)))
    try:
        vllm = backend_class(ckpt.kind, "vllm")
        models = {c.fingerprint: vllm.on_server(server, c, options) for c in members}
    except BaseException:
        if borrowed is None:
            server.stop()
        raise
    return VllmGenerator(models, None if borrowed else server, ckpt.fingerprint)
