"""Helpfulness: a reward model's raw score of (prompt, response).

`kind: starling` (default) loads berkeley-nest/Starling-RM-7B-alpha the way its
card does (see `_starling`); `kind: sequence_classification` takes any
AutoModelForSequenceClassification reward model with one output, fed the
conversation through its tokenizer's chat template.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field

from cai_bench.trust import trust_remote_code as _remote_code
from cai_bench.errors import UserError
from cai_bench.harness.scorers._hf import hub_reason, load_error, local_or_hub, pick_device, pick_dtype
from cai_bench.harness.scorers.base import MetricSpec, Scorer, ScorerConfig, ScoreInput, ScoreRow
from cai_bench.harness.scorers.registry import scorer
from cai_bench.io import hub_offline

log = logging.getLogger("cai_bench.scorers")


class HelpfulnessConfig(ScorerConfig):
    model: str = "berkeley-nest/Starling-RM-7B-alpha"
    kind: Literal["starling", "sequence_classification"] = "starling"
    base_model: str = "meta-llama/Llama-2-7b-chat-hf"  # starling: backbone config, tokenizer, missing weights
    weights_file: str | None = None  # starling: default = the card's rule (*.pt / *model.bin)
    max_length: int = Field(2048, ge=8)
    batch_size: int = Field(4, ge=1)
    padding_side: Literal["right", "left"] = "right"
    dtype: str = "auto"  # auto: bfloat16 on GPU, float32 on CPU
    load_in_4bit: bool = False  # bitsandbytes NF4, for 7B reward models on small GPUs
    device: str | None = None
    trust_remote_code: bool = False


@scorer("helpfulness", metrics=[
    MetricSpec("reward", "higher", None, None, "raw reward-model score (scale is the model's)"),
])
class HelpfulnessScorer(Scorer):
    Config = HelpfulnessConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._rm = None
        self.truncated = 0

    def available(self) -> tuple[bool, str]:
        cfg = self.config
        if cfg.kind == "starling":
            reason = hub_reason(cfg.base_model) or _starling_weights_reason(cfg.model, cfg.weights_file)
        else:
            reason = hub_reason(cfg.model)
        if reason:
            return False, reason
        if cfg.load_in_4bit:
            try:
                import bitsandbytes  # noqa: F401
            except ImportError:
                return False, "load_in_4bit needs bitsandbytes (pip install bitsandbytes)"
        return True, ""

    def hub_models(self) -> list[str]:
        cfg = self.config
        return [cfg.base_model, cfg.model] if cfg.kind == "starling" else [cfg.model]

    def resolved(self) -> dict:
        from cai_bench.models.revision import model_revision

        cfg = self.config
        out = {"model_revision": model_revision(cfg.model)}
        if cfg.kind == "starling":
            out["base_model_revision"] = model_revision(cfg.base_model)
        return out

    def load(self) -> None:
        cfg = self.config
        device = pick_device(cfg.device)
        dtype = pick_dtype(cfg.dtype, device)
        if cfg.kind == "starling":
            from cai_bench.harness.scorers._starling import StarlingRewardModel, convert
            from cai_bench.paths import cai_bench_home

            model = cfg.model if cfg.model.startswith("hf:") else local_or_hub(cfg.model)
            try:
                folder = convert(model, local_or_hub(cfg.base_model), cfg.weights_file,
                                 cai_bench_home() / "scorers" / "starling")
                self._rm = StarlingRewardModel(folder, dtype=dtype, device=device, load_in_4bit=cfg.load_in_4bit)
            except UserError:
                raise
            except Exception as exc:
                raise load_error(self.id, cfg.model, exc) from None
        else:
            self._rm = _SequenceClassificationRM(local_or_hub(cfg.model), dtype=dtype, device=device,
                                                 load_in_4bit=cfg.load_in_4bit,
                                                 trust_remote_code=_remote_code(cfg.trust_remote_code, "scorer helpfulness"))

    def close(self) -> None:
        self._rm = None

    def texts(self, batch: list[ScoreInput]) -> list[str]:
        """The exact strings the reward model reads (for inspection and tests)."""
        self.ensure_loaded()
        if self.config.kind == "starling":
            from cai_bench.harness.scorers._starling import starling_text

            return [starling_text(x.prompt, x.response) for x in batch]
        return [self._rm.format(x.prompt, x.response) for x in batch]

    def score(self, batch: list[ScoreInput]) -> list[ScoreRow]:
        cfg = self.config
        texts = self.texts(batch)
        rows: list[ScoreRow] = []
        cut_here = 0
        for start in range(0, len(batch), cfg.batch_size):
            chunk = texts[start:start + cfg.batch_size]
            values, cut = self._rm.rewards(chunk, max_length=cfg.max_length, padding_side=cfg.padding_side)
            for x, v, c in zip(batch[start:start + cfg.batch_size], values, cut):
                cut_here += c
                rows.append(ScoreRow.ok(x.key, "reward", v, {"truncated": True} if c else None))
        if cut_here:
            self.truncated += cut_here
            log.warning("helpfulness: %d of %d inputs were longer than %d tokens and were truncated",
                        cut_here, len(batch), cfg.max_length)
        return rows


def _starling_weights_reason(model: str, weights_file: str | None) -> str | None:
    """Why the reward model's weights file cannot be had here (offline and not cached), or None.

    The Starling repo holds a weights file and no config.json, so look for the file itself."""
    from pathlib import Path

    if Path(model).expanduser().exists() or not hub_offline():
        return None
    from cai_bench.harness.scorers._starling import find_weights_file

    try:
        find_weights_file(model, weights_file)
    except UserError:
        return f"reward model {model!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1"
    except Exception as exc:  # noqa: BLE001 - any cache problem means unavailable
        return f"reward model {model!r}: {type(exc).__name__}: {exc}"
    return None


class _SequenceClassificationRM:
    """Any AutoModelForSequenceClassification reward model with a single output."""

    def __init__(self, source: str, *, dtype: Any, device: str, load_in_4bit: bool, trust_remote_code: bool) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code}
        if load_in_4bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                               bnb_4bit_compute_dtype=dtype)
            kwargs["device_map"] = {"": device}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
        except Exception as exc:
            raise load_error("helpfulness", source, exc) from None
        if model.config.num_labels != 1:
            raise UserError(f"scorer helpfulness: {source} has {model.config.num_labels} outputs; a reward model "
                            "has one (num_labels=1)")
        self.model = model.eval() if load_in_4bit else model.to(device).eval()
        self.device = device
        # Encoders (BERT/RoBERTa) place positions themselves from the padding; decoders
        # need explicit position ids under left padding.
        from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

        self.decoder = model.config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        if not getattr(self.tokenizer, "chat_template", None):
            raise UserError(f"scorer helpfulness: {source}'s tokenizer has no chat template; the reward model's "
                            "input format is unknown")

    def format(self, prompt: str, response: str) -> str:
        chat = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        return self.tokenizer.apply_chat_template(chat, tokenize=False)

    def pad_id(self, ids: list[list[int]]) -> int:
        """A pad id that is no sequence's last token. Transformers reads the reward at
        the rightmost non-pad token, so padding with eos (the usual fallback) would
        move the reward off a conversation that ends in eos."""
        tok = self.tokenizer
        last = {x[-1] for x in ids if x}
        for cand in (tok.pad_token_id, tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, 0, 1):
            if cand is not None and cand not in last:
                return int(cand)
        raise UserError("scorer helpfulness: no usable pad token")  # pragma: no cover - needs 6 clashes

    def rewards(self, texts: list[str], *, max_length: int, padding_side: str) -> tuple[list[float], list[bool]]:
        import torch

        full = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        ids = [x[:max_length] for x in full]
        pad = self.pad_id(ids)
        if not self.decoder:
            padding_side = "right"  # an encoder's head reads the first token: it must not be a pad
        width = max(len(x) for x in ids)
        rows, masks = [], []
        for x in ids:
            fill = [pad] * (width - len(x))
            rows.append(fill + x if padding_side == "left" else x + fill)
            ones, zeros = [1] * len(x), [0] * len(fill)
            masks.append(zeros + ones if padding_side == "left" else ones + zeros)
        input_ids = torch.tensor(rows, device=self.device)
        mask = torch.tensor(masks, device=self.device)
        self.model.config.get_text_config().pad_token_id = pad
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if self.decoder:
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(**kwargs).logits
        return logits[:, 0].float().tolist(), [len(x) > max_length for x in full]
