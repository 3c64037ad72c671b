"""The in-process chat engine of the HF backend (`hf_model.HFModel`, which the
registry opens): a full checkpoint or PEFT adapter answering batched greedy or
sampled generation with left padding.

Left padding keeps every prompt's last token at the same position, so one
`generate` call serves a whole batch; prompts are grouped by length to waste
little compute on padding. There is no grammar here (`structured` is False):
callers parse and check the text, and may pre-fill the assistant turn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from cai_bench.errors import UserError
from cai_bench.models.chat.base import Completion, Conversation, GenParams

log = logging.getLogger("cai_bench.chat")


def _device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype(name: str, device: str):  # noqa: ANN202 - a torch dtype
    import torch

    if name == "auto":  # bf16 on GPUs, fp32 on CPUs (bf16 matmuls are slow there)
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return getattr(torch, name)
    except AttributeError:
        raise UserError(f"dtype {name!r} is not a torch dtype (float32, bfloat16, float16)") from None


class HFChat:
    """A causal LM (optionally with a PEFT adapter) loaded once in this process."""

    structured: ClassVar[bool] = False

    def __init__(self, model_dir: str, *, adapter: str | None = None, batch_size: int = 16,
                 device: str | None = None, dtype: str = "auto", label: str | None = None,
                 trust_remote_code: bool = False) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = label or model_dir
        self.batch_size = max(1, batch_size)
        self.device = _device(device)
        try:
            try:
                tok = AutoTokenizer.from_pretrained(adapter or model_dir, trust_remote_code=trust_remote_code)
            except (OSError, ValueError):
                tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=_dtype(dtype, self.device),
                                                         trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.name}: cannot load the model: {type(exc).__name__}: {exc}") from None
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self._model_dir = model_dir
        self.tokenizer = tok
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        self.model = model.to(self.device).eval()

    def _render(self, conv: Conversation, prefill: str | None) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise UserError(f"{self._model_dir}: the tokenizer has no chat template; a chat model is needed "
                            "(a classifier given its published prompt as raw text needs none)")
        try:
            text = self.tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        except Exception:  # noqa: BLE001 - templates without a system role: fold it into the first user turn
            if not conv or conv[0]["role"] != "system" or len(conv) < 2:
                raise
            merged = [{"role": conv[1]["role"], "content": conv[0]["content"] + "\n\n" + conv[1]["content"]},
                      *conv[2:]]
            text = self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        return text + (prefill or "")

    def chat(self, messages_batch: Sequence[Conversation], params: GenParams, *,
             json_schema: dict[str, Any] | None = None, prefill: str | None = None) -> list[Completion]:
        return self._batched([self._render(c, prefill) for c in messages_batch], params)

    def complete(self, prompts: Sequence[str], params: GenParams) -> list[Completion]:
        """Continue each raw prompt, no chat template: the input a classifier's published
        prompt is (its own markup included). The tokenizer's BOS is put in front, as
        tokenizing the prompt the usual way does, unless the prompt already starts with it."""
        return self._batched([self._with_bos(p) for p in prompts], params)

    def _with_bos(self, text: str) -> str:
        tok = self.tokenizer
        bos = tok.bos_token
        if not bos or text.startswith(bos):
            return text
        adds = tok("x")["input_ids"][:1] == [tok.bos_token_id]
        return bos + text if adds else text

    def _batched(self, texts: list[str], params: GenParams) -> list[Completion]:
        import torch

        if self.device == "cpu":  # threads for the cores other processes leave free (re-measured every 30 s)
            from cai_bench.cpu_threads import apply

            apply("generation", min_interval=30.0)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        lengths = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        out: list[Completion | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            for i, comp in zip(idx, self._generate([texts[i] for i in idx], params)):
                out[i] = comp
        return [c for c in out if c is not None]

    def _generate(self, texts: list[str], params: GenParams) -> list[Completion]:
        import torch

        tok = self.tokenizer
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "pad_token_id": tok.pad_token_id}
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        top_k = params.top_logprobs
        if top_k > 0:  # the raw logits of the first step: log-probs before any sampling warper
            kwargs.update(output_logits=True, return_dict_in_generate=True)
        with torch.inference_mode():
            gen = self.model.generate(**enc, **kwargs)
        firsts: list[dict[str, float] | None] = [None] * len(texts)
        if top_k > 0:
            logp = torch.log_softmax(gen.logits[0].float(), dim=-1)
            values, ids = logp.topk(min(top_k, logp.shape[-1]), dim=-1)
            firsts = [_by_text(tok, row.tolist(), vs.tolist()) for vs, row in zip(values, ids)]
            gen = gen.sequences
        new = gen[:, enc["input_ids"].shape[1]:]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {tok.eos_token_id}
        eos_ids.discard(None)
        results = []
        for row, first in zip(new.tolist(), firsts):
            n = len(row)
            for j, t in enumerate(row):
                if t in eos_ids:
                    n = j
                    break
            finish = "stop" if n < len(row) or n < params.max_new_tokens else "length"
            results.append(Completion(tok.decode(row[:n], skip_special_tokens=True), finish, n, first_logprobs=first))
        return results

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


def _by_text(tok: Any, ids: list[int], logps: list[float]) -> dict[str, float]:
    """Token text -> log-prob; ids that decode to the same text add up (log-sum-exp)."""
    import math

    out: dict[str, float] = {}
    for i, lp in zip(ids, logps):
        key = tok.decode([i])
        out[key] = lp if key not in out else max(out[key], lp) + math.log1p(math.exp(-abs(out[key] - lp)))
    return out

