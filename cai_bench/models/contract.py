"""The one model contract: "a model I can ask", whatever runs it.

Every backend (in-process transformers, vLLM, OpenAI-compatible servers,
Ollama, or a plugin's) is a class that answers chats (`chat`, the chat layer's
contract) and, where it can, scores log-likelihoods (`loglikelihood`, lm-eval's
`LM.loglikelihood` idea). A backend that wraps an lm-eval `LM` exposes it
(`lm_eval_lm`), so `run` keeps generating local checkpoints through lm-eval
and HHH keeps scoring through it. Backends are chosen by
`cai_bench.models.registry` from a resolved checkpoint's (kind, engine).

Optional: `complete(prompts, params)`, raw-text completion without a chat
template, for classifiers whose published prompt is the model's whole input
(HarmBench's, Llama Guard's); the hf, openai, vllm and ollama backends have it
(`can_complete`). Any backend may fill `Completion.first_logprobs` when
`GenParams.top_logprobs` asks.

`ServedModel` is the base for backends that only return text: it answers
`loglikelihood` with a one-line `Unsupported` error, and turns a spec
`KIND:NAME` into a `ResolvedCheckpoint` fingerprinted by kind and name (a
backend whose identity also depends on an endpoint overrides `resolve`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from cai_bench.errors import UserError

if TYPE_CHECKING:
    from cai_bench.models.chat.base import ChatOptions, Completion, Conversation, GenParams
    from cai_bench.models.resolve import ResolvedCheckpoint

LoglikRequest = tuple[str, str]  # (context, continuation), as lm-eval's `Instance.arguments`


class Unsupported(UserError):
    """The backend cannot do what was asked (log-likelihoods from a served model)."""


@runtime_checkable
class Model(Protocol):
    """What every backend class implements. Class-level facts first, then the
    constructors the registry calls, then what an opened model does."""

    kind: ClassVar[str]  # the checkpoint kind it serves ("hf", "openai", "toy"...)
    structured: ClassVar[bool]  # True when `json_schema` constrains the output server-side
    loglik: ClassVar[bool]  # True when `loglikelihood` works
    DEFAULT_MODEL: ClassVar[str]  # what `open(None)` means (scorer configs leave the model out)
    name: str

    @classmethod
    def from_checkpoint(cls, ckpt: "ResolvedCheckpoint", options: "ChatOptions") -> "Model": ...

    @classmethod
    def open(cls, model: str, options: "ChatOptions") -> "Model": ...

    @classmethod
    def available(cls, model: str, options: "ChatOptions") -> tuple[bool, str]: ...

    def load(self) -> None:
        """Load weights or connect now (idempotent), so a bad model fails where it is opened."""

    def chat(self, messages_batch: Sequence["Conversation"], params: "GenParams", *,
             json_schema: dict[str, Any] | None = None, prefill: str | None = None) -> list["Completion"]:
        """One completion per conversation, in order (see `cai_bench.models.chat.base`)."""

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> list[tuple[float, bool]]:
        """(log P(continuation | context), whether it is the greedy continuation) per request."""

    def lm_eval_lm(self) -> Any:
        """The lm-eval `LM` this model wraps, or None (then `run` asks it through `chat`)."""

    def close(self) -> None:
        """Free the weights, stop owned servers, close clients."""


def can_complete(model: object) -> bool:
    """Whether `model` takes raw prompts (`complete`), not only chats."""
    return callable(getattr(model, "complete", None))


class ServedModel:
    """Defaults for a backend that returns text only: no log-likelihoods, no lm-eval
    LM, nothing to load before the first request, and an identity of kind + model
    name. Subclasses set `kind`, implement `open` (and `chat`, `close`)."""

    kind: ClassVar[str] = ""
    structured: ClassVar[bool] = False
    loglik: ClassVar[bool] = False
    DEFAULT_MODEL: ClassVar[str] = ""
    name: str = ""

    @classmethod
    def resolve(cls, model: str, base_url: str | None = None) -> "ResolvedCheckpoint":
        """The checkpoint `KIND:model` stands for; its fingerprint is what results are stored under."""
        from cai_bench.models.fingerprint import fingerprint_text
        from cai_bench.models.resolve import ResolvedCheckpoint

        return ResolvedCheckpoint(f"{cls.kind}:{model}", cls.kind, model, fingerprint_text(cls.kind, model), model)

    @classmethod
    def from_checkpoint(cls, ckpt: "ResolvedCheckpoint", options: "ChatOptions") -> Any:
        return cls.open(ckpt.model, options)

    @classmethod
    def open(cls, model: str, options: "ChatOptions") -> Any:
        """Each served backend supplies this (the class docstring); reaching the base is a backend bug."""
        raise NotImplementedError(f"{cls.__qualname__} is a served backend without `open(model, options)`: "
                                  "a backend subclassing ServedModel must define it")

    @classmethod
    def available(cls, model: str, options: "ChatOptions") -> tuple[bool, str]:
        return True, ""

    def load(self) -> None:
        """Nothing to load: the first request connects."""

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> list[tuple[float, bool]]:
        raise Unsupported(f"{self.name or self.kind}: the {self.kind} backend returns text only, so it cannot "
                          "score log-likelihoods; use a local, hf: or PEFT checkpoint")

    def lm_eval_lm(self) -> Any:
        return None

    def close(self) -> None:
        """Nothing to free."""
