"""The in-process Hugging Face backend (full checkpoints and PEFT adapters) behind
the model contract: chats through `HFChat` (transformers `generate`, batched,
left-padded) and scores log-likelihoods through lm-eval's `HFLM`, the LM that
`run` generates with and HHH scores with.

Each is built on first use, so `run` (lm-eval only) never loads a second copy
of the weights for chat, and `generate` never builds an lm-eval model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from cai_bench.errors import MissingDependency, UserError
from cai_bench.models.chat.base import ChatOptions, Completion, Conversation, GenParams
from cai_bench.models.contract import LoglikRequest


class HFModel:
    """A local checkpoint (`hf`, `peft`) loaded in this process."""

    kind: ClassVar[str] = "hf"
    local: ClassVar[bool] = True
    structured: ClassVar[bool] = False  # no grammar: callers parse the text, and may pre-fill the turn
    loglik: ClassVar[bool] = True
    DEFAULT_MODEL: ClassVar[str] = "bundled:smollm2-135m-instruct"

    def __init__(self, ckpt: Any, options: ChatOptions) -> None:
        self.ckpt = ckpt
        self.options = options
        self.name = ckpt.label
        self._chat: Any = None
        self._lm: Any = None

    @classmethod
    def from_checkpoint(cls, ckpt: Any, options: ChatOptions) -> "HFModel":
        return cls(ckpt, options)

    @classmethod
    def open(cls, model: str, options: ChatOptions) -> "HFModel":
        """From a spec (`bundled:`, `hf:`, a folder, an adapter folder) or a bare hub id."""
        return cls(resolve_local(model), options)

    @classmethod
    def available(cls, model: str, options: ChatOptions) -> tuple[bool, str]:
        """False for a hub model that is neither cached nor downloadable (offline hub)."""
        from pathlib import Path

        if model.startswith("bundled:") or Path(model).expanduser().is_dir():
            return True, ""
        from huggingface_hub import constants, try_to_load_from_cache

        repo = model.removeprefix("hf:").split("@")[0]
        if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(repo, "config.json"), str):
            return False, f"model {repo!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1"
        return True, ""

    def load(self) -> None:
        """Load the chat model now (tokenizer with a chat template, weights, adapter)."""
        self.chat_engine()

    def chat_engine(self) -> Any:
        if self._chat is None:
            from cai_bench.models.chat.hf_chat import HFChat

            o, ck = self.options, self.ckpt
            self._chat = HFChat(ck.model, adapter=ck.adapter, batch_size=o.batch_size, device=o.device,
                                dtype=o.dtype, label=ck.label, trust_remote_code=o.trust_remote_code)
        return self._chat

    def chat(self, messages_batch: Sequence[Conversation], params: GenParams, *,
             json_schema: dict[str, Any] | None = None, prefill: str | None = None) -> list[Completion]:
        return self.chat_engine().chat(messages_batch, params, json_schema=json_schema, prefill=prefill)

    def complete(self, prompts: Sequence[str], params: GenParams) -> list[Completion]:
        """Raw-text completion (no chat template), see `HFChat.complete`."""
        return self.chat_engine().complete(prompts, params)

    def lm_eval_lm(self) -> Any:
        """lm-eval's HFLM for this checkpoint (adapter included), built once. `dtype`
        "auto" is float32 on a CPU (bf16 matmuls are slow there), else the model's own."""
        if self._lm is None:
            try:
                from lm_eval.models.huggingface import HFLM
            except ImportError:
                raise MissingDependency("lm-eval with the hf extra", "pip install 'lm-eval[hf]'") from None
            o, ck = self.options, self.ckpt
            device = o.device or _default_device()
            kwargs: dict[str, Any] = {"pretrained": ck.model, "device": device, "batch_size": o.batch_size,
                                      "dtype": o.dtype if device != "cpu" or o.dtype != "auto" else "float32"}
            if ck.adapter:
                kwargs["peft"] = ck.adapter
            try:
                self._lm = HFLM(**kwargs)
            except OSError as exc:
                raise UserError(f"{ck.spec}: could not load the model: {exc}") from None
        return self._lm

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> list[tuple[float, bool]]:
        """lm-eval's `loglikelihood` on (context, continuation) pairs."""
        from lm_eval.api.instance import Instance

        if not requests:
            return []
        insts = [Instance("loglikelihood", {}, (ctx, cont), i) for i, (ctx, cont) in enumerate(requests)]
        return [(float(ll), bool(greedy)) for ll, greedy in self.lm_eval_lm().loglikelihood(insts, disable_tqdm=True)]

    def close(self) -> None:
        if self._chat is not None:
            self._chat.close()
        self._chat = None
        if self._lm is not None:
            model = getattr(self._lm, "_model", None)
            self._lm = None
            del model
            free_memory()


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def free_memory() -> None:
    """Collect freed weights now, and hand CUDA's cached blocks back, so the next model fits."""
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def resolve_local(model: str) -> Any:
    """A checkpoint spec, a folder or a bare hub id as a resolved local checkpoint."""
    from pathlib import Path

    from cai_bench.models.resolve import resolve_checkpoint

    if model.startswith(("bundled:", "hf:")) or Path(model).expanduser().exists():
        return resolve_checkpoint(model)
    return resolve_checkpoint(f"hf:{model}")
