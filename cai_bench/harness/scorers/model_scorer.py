"""What the published harm classifiers share: a model asked through the one model
contract (any registered kind: an in-process transformers model, a vLLM server,
an OpenAI-compatible or Ollama server), its config fields, and one way to send
a batch of raw prompts or chats and get text (plus first-token log-probs) back.

A transport failure gives error rows (a re-run retries them); an answer that
does not parse gives unscored rows with the reason and the raw text, never a
made-up verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from cai_bench.defaults import CHAT
from cai_bench.errors import UserError
from cai_bench.harness.scorers.base import Scorer, ScorerConfig
from cai_bench.models.chat.retry import redact
from cai_bench.models.vllm_server import VllmSettings

PromptMode = Literal["raw", "template", "chat"]


class ModelScorerConfig(ScorerConfig):
    """A scorer that asks one model through the model contract (the published classifiers, the LLM judge)."""

    asks: ClassVar[str] = ""  # how errors name the model ("judge": "unknown judge backend")
    backend: str = "hf"  # a model kind: hf (in-process, or engine vllm), openai, ollama, or a plugin's
    model: str | None = None  # the scorer's published model when left out (hf) or the backend's default
    host: str | None = None  # ollama; else $OLLAMA_HOST
    base_url: str | None = None  # openai; else $OPENAI_BASE_URL
    api_key: SecretStr | None = None  # openai; else $OPENAI_API_KEY; never stored or hashed
    temperature: float = Field(0.0, ge=0)
    seed: int = 0
    concurrency: int = Field(CHAT.concurrency, ge=1, le=64)  # served backends: requests in flight
    batch_size: int = Field(4, ge=1)  # hf backend
    max_attempts: int = Field(4, ge=1, le=20)  # transport retries (429/5xx/timeouts)
    timeout: float = Field(120.0, gt=0)
    initial_wait: float = Field(0.5, ge=0)
    max_wait: float = Field(20.0, ge=0)
    device: str | None = None  # hf
    trust_remote_code: bool = False  # hf
    engine: Literal["hf", "vllm"] = "hf"  # hf backend: in-process transformers, or a vLLM server
    vllm: VllmSettings = Field(default_factory=VllmSettings)  # engine vllm: how its server starts

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        from cai_bench.models.registry import kinds

        if v not in kinds():
            raise ValueError(f"unknown {cls.asks + ' ' if cls.asks else ''}backend {v!r}; known: {', '.join(kinds())}")
        return v

    @model_validator(mode="after")
    def _engine_for_local(self) -> "ModelScorerConfig":
        from cai_bench.models.registry import is_local_kind

        if self.engine == "vllm" and not is_local_kind(self.backend):
            raise ValueError(f"engine vllm serves a local {self.asks + ' ' if self.asks else ''}model: it needs "
                             f"backend hf, not {self.backend}")
        return self

    def where(self, model: str) -> dict[str, Any]:
        """Where the model answers, for a scorer's identity: the endpoint of a served one, the
        revision of a local one (either changes the scores)."""
        from cai_bench.hashing import endpoint
        from cai_bench.models.chat.settings import ollama_host, openai_base_url
        from cai_bench.models.registry import is_local_kind

        if self.backend == "ollama":
            return {"endpoint": endpoint(ollama_host(self.host))}
        if self.backend == "openai":
            return {"endpoint": endpoint(openai_base_url(self.base_url))}
        if is_local_kind(self.backend):
            from cai_bench.models.revision import model_revision

            return {"model_revision": model_revision(model)}
        return {}

    def chat_options(self, who: str) -> Any:
        """How the model contract opens the model this scorer asks (`who` names it in the
        remote-code consent message)."""
        from cai_bench.models.chat import ChatOptions, RetryPolicy
        from cai_bench.trust import trust_remote_code

        return ChatOptions(
            base_url={"ollama": self.host, "openai": self.base_url}.get(self.backend),
            api_key=self.api_key.get_secret_value() if self.api_key is not None else None,
            concurrency=self.concurrency, batch_size=self.batch_size, device=self.device,
            trust_remote_code=trust_remote_code(self.trust_remote_code, who),
            engine=self.engine, vllm=self.vllm,
            retry=RetryPolicy(attempts=self.max_attempts, timeout=self.timeout, initial_wait=self.initial_wait,
                              max_wait=self.max_wait))

    def identity_dict(self) -> dict[str, Any]:
        """The engine is part of the verdicts' identity (vLLM decodes in bf16, maybe constrained to a
        schema); "hf" adds nothing, so scores stored before engines match. Of the server's settings
        only those that can change a verdict count."""
        out = super().identity_dict()
        out.pop("vllm", None)
        if out.get("engine") == "hf":
            out.pop("engine")
        else:
            out["vllm"] = {"dtype": self.vllm.dtype, "max_model_len": self.vllm.max_model_len}
        return out


class ModelScorer(Scorer):
    """Base of the scorers that ask one model; subclasses set `template_name` (the
    vendored file) and `published_model` (the model the template was made for)."""

    Config = ModelScorerConfig
    template_name: str = ""
    published_model: str | None = None

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._backend: Any = None

    @property
    def remote(self) -> bool:  # type: ignore[override]
        from cai_bench.models.registry import is_local_kind

        return not is_local_kind(self.config.backend)

    def model_name(self) -> str:
        """The model asked: the config's, else the published one (local kinds), else the backend's default."""
        from cai_bench.models.registry import default_model, is_local_kind

        cfg = self.config
        if cfg.model:
            return cfg.model
        if self.published_model and is_local_kind(cfg.backend):
            return self.published_model
        return default_model(cfg.backend, cfg.engine)

    def _options(self) -> Any:
        return self.config.chat_options(f"scorer {self.id}")

    def available(self) -> tuple[bool, str]:
        from cai_bench.models.opener import model_available

        return model_available(self.config.backend, self.model_name(), self._options())

    def hub_models(self) -> list[str]:
        return [] if self.remote else [self.model_name()]

    def judge_models(self) -> list[tuple[str, str | None]]:
        """The model asked, as a checkpoint would name it: a classifier or rubric judge must not grade
        itself any more than the LLM judge (`harness.self_grading`)."""
        from cai_bench.models.registry import is_local_kind

        cfg = self.config
        if is_local_kind(cfg.backend):
            return [(self.model_name(), None)]
        return [(f"{cfg.backend}:{self.model_name()}", {"ollama": cfg.host, "openai": cfg.base_url}.get(cfg.backend))]

    def resolved(self) -> dict[str, Any]:
        """The model (with its revision where local, the endpoint where served) and the
        vendored template's text and provenance."""
        from cai_bench.hashing import digest
        from cai_bench.harness.scorers.published_prompts import provenance, published

        cfg = self.config
        model = self.model_name()
        out: dict[str, Any] = {"model": model, "template": digest(published(self.template_name)),
                               "template_source": provenance(self.template_name)["source"]}
        return {**out, **cfg.where(model)}

    def load(self) -> None:
        from cai_bench.models.opener import open_model

        try:
            self._backend = open_model(self.config.backend, self.model_name(), self._options())
        except UserError as exc:
            raise UserError(f"scorer {self.id}: {exc.message}") from None

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self._backend = None

    def _secret(self) -> str | None:
        from cai_bench.models.chat.settings import openai_api_key

        return openai_api_key(self.config.api_key.get_secret_value() if self.config.api_key is not None else None)

    def ask(self, items: Sequence[Any], *, raw: bool, max_tokens: int, top_logprobs: int = 0,
            json_schema: dict[str, Any] | None = None) -> list[tuple[Any, str | None]]:
        """(completion, None) or (None, error) per item: raw prompts through the backend's
        `complete`, chats through `chat`. A batch that raises gives an error for each item."""
        from cai_bench.models.chat import GenParams
        from cai_bench.models.contract import can_complete

        cfg = self.config
        if raw and not can_complete(self._backend):
            why = (f"the {cfg.backend} backend takes chats only, not the published raw prompt; "
                   "set prompt: chat")
            return [(None, why)] * len(items)
        params = GenParams(max_new_tokens=max_tokens, temperature=cfg.temperature, seed=cfg.seed,
                           top_logprobs=top_logprobs)
        size = cfg.batch_size if not self.remote and cfg.engine == "hf" else max(1, len(items))
        out: list[tuple[Any, str | None]] = []
        for s in range(0, len(items), size):
            chunk = list(items[s:s + size])
            try:
                replies = (self._backend.complete(chunk, params) if raw else
                           self._backend.chat(chunk, params, json_schema=json_schema))
            except Exception as exc:  # noqa: BLE001 - the endpoint is down: error rows, the run goes on
                msg = redact(f"{type(exc).__name__}: {exc}", self._secret())[:500]
                out.extend([(None, msg)] * len(chunk))
                continue
            out.extend((r, None) if r.ok else (None, redact(r.error, self._secret())[:500]) for r in replies)
        return out

    def describe(self) -> dict[str, Any]:
        """What each row's detail records about who answered."""
        cfg = self.config
        return {"backend": cfg.backend, "model": self.model_name(),
                **({"engine": "vllm"} if cfg.engine == "vllm" else {})}
