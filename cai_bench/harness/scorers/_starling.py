"""Starling-RM-7B-alpha, loaded the way its model card does, minus its trap.

The card's `GPTRewardModel` wraps Llama-2-7b-chat: `self.model` is the causal
LM, `self.transformer = model.model` its backbone, `self.v_head =
nn.Linear(hidden, 1, bias=False)`; the tokenizer pads with its unk token; the
repo's weights file (the first `*.pt` / `*model.bin` in the repo) is loaded with
`load_state_dict(..., strict=False)` and the reward is read at the last token
before the padding. `strict=False` means a checkpoint without `v_head.weight`
silently scores with a random head; here that is refused.

The backbone weights are taken from the checkpoint (prefix `transformer.`, or
`model.model.` / `model.`), any missing ones from the base model, and written
once as a plain Hugging Face folder under the cai-bench home so that
`from_pretrained` can load it in any dtype or in 4 bit.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from cai_bench.errors import UserError
from cai_bench.hashing import digest
from cai_bench.io import hub_offline

log = logging.getLogger("cai_bench.scorers")

PROMPT_FORMAT = "<s>[INST] {prompt} </s> [/INST] {response}</s>"
BACKBONE_PREFIXES = ("transformer.", "model.model.", "model.")
BACKBONE_ROOTS = ("embed_tokens.", "layers.", "norm.")
CONVERTED_VERSION = 1


def starling_text(prompt: str, response: str) -> str:
    return PROMPT_FORMAT.format(prompt=prompt, response=response)


def is_weights_file(name: str) -> bool:
    """The card's rule (`*.pt` or `*model.bin`), plus safetensors."""
    return name.endswith((".pt", "model.bin", "model.safetensors"))


def find_weights_file(model: str, weights_file: str | None = None) -> Path:
    """The reward model's weights file, from a local folder or the hub (hf_hub_download)."""
    path = Path(model).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        if weights_file:
            target = path / weights_file
            if not target.is_file():
                raise UserError(f"{path}: weights_file {weights_file!r} not found")
            return target
        names = sorted(p.name for p in path.iterdir() if p.is_file() and is_weights_file(p.name))
        if not names:
            raise UserError(f"{path}: no reward-model weights file (*.pt, *model.bin, *model.safetensors)")
        return path / names[0]
    from huggingface_hub import hf_hub_download

    repo = model.removeprefix("hf:")
    try:
        name = weights_file or _hub_weights_name(repo)
        return Path(hf_hub_download(repo, name))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"scorer helpfulness: cannot fetch the weights of {repo!r}: {type(exc).__name__}: {exc}. "
                        "Fix: download it where the hub is reachable or pass a local folder") from None


def _hub_weights_name(repo: str) -> str:
    offline = hub_offline()
    if offline:
        from huggingface_hub import snapshot_download

        snap = Path(snapshot_download(repo, local_files_only=True))
        names = sorted(p.name for p in snap.iterdir() if is_weights_file(p.name))
    else:
        from huggingface_hub import HfApi

        names = sorted(n for n in HfApi().list_repo_files(repo) if "/" not in n and is_weights_file(n))
    if not names:
        raise UserError(f"{repo}: no reward-model weights file (*.pt, *model.bin) in the repo")
    return names[0]


def load_state_dict(path: Path) -> dict[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a state dict")
    return state


def split_state_dict(state: dict[str, Any], source: Path) -> tuple[dict[str, Any], Any]:
    """(backbone state dict with LlamaModel keys, v_head weight); refuses a missing head."""
    head = state.get("v_head.weight")
    if head is None:
        sample = ", ".join(sorted(state)[:5])
        raise UserError(
            f"{source}: no 'v_head.weight' in the reward-model checkpoint (keys start: {sample}). "
            "Scoring with a freshly initialised head would give meaningless rewards; point `model` at the "
            "reward model's own weights (e.g. berkeley-nest/Starling-RM-7B-alpha), or use "
            "kind: sequence_classification for AutoModelForSequenceClassification reward models")
    if head.dim() != 2 or head.shape[0] != 1:
        raise UserError(f"{source}: v_head.weight has shape {tuple(head.shape)}, expected (1, hidden_size)")
    for prefix in BACKBONE_PREFIXES:
        backbone = {k[len(prefix):]: v for k, v in state.items()
                    if k.startswith(prefix) and k[len(prefix):].startswith(BACKBONE_ROOTS)}
        if backbone:
            return backbone, head
    return {}, head


def convert(model: str, base_model: str, weights_file: str | None, cache_root: Path) -> Path:
    """A plain HF folder (backbone + v_head.safetensors + tokenizer), built once and cached."""
    weights = find_weights_file(model, weights_file)
    st = weights.stat()
    key = digest([CONVERTED_VERSION, str(weights.resolve()), st.st_size, int(st.st_mtime), base_model],
                 compact=False, ensure_ascii=True)  # the form converted copies are cached under
    target = cache_root / key
    if (target / "v_head.safetensors").is_file():
        return target
    from cai_bench.paths import atomic_directory

    state = load_state_dict(weights)
    backbone, head = split_state_dict(state, weights)
    log.warning("helpfulness: converting %s once into %s", weights, target)
    with atomic_directory(target) as tmp:
        _write_backbone(backbone, head, base_model, weights, tmp)
    return target


def _write_backbone(backbone: dict, head: Any, base_model: str, weights: Path, out: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(base_model)
    if head.shape[1] != config.hidden_size:
        raise UserError(f"{weights}: v_head has {head.shape[1]} inputs but {base_model} has hidden_size "
                        f"{config.hidden_size}; base_model does not match the reward model")
    with torch.device("meta"):
        expected = set(AutoModel.from_config(config).state_dict())
    missing = expected - set(backbone)
    unexpected = set(backbone) - expected
    if unexpected:
        raise UserError(f"{weights}: backbone keys not in {base_model}'s layout: {sorted(unexpected)[:5]}")
    if missing:
        # the card starts from the base model's weights and overlays the checkpoint's
        log.warning("helpfulness: %d backbone tensors not in %s; taken from %s", len(missing), weights.name,
                    base_model)
        base = AutoModel.from_pretrained(base_model, dtype=next(iter(backbone.values())).dtype
                                         if backbone else torch.float32).state_dict()
        backbone = {**{k: base[k] for k in missing}, **backbone}
    tensors = {k: v.contiguous().clone() for k, v in backbone.items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out)
    save_file({"weight": head.contiguous().clone()}, str(out / "v_head.safetensors"))
    AutoTokenizer.from_pretrained(base_model).save_pretrained(out)
    (out / "cai_bench_source.json").write_text(json.dumps({"weights": str(weights), "base_model": base_model}))


class StarlingRewardModel:
    """Backbone + v_head; reward at each row's last non-pad token (left or right padding)."""

    def __init__(self, folder: Path, *, dtype: Any, device: str, load_in_4bit: bool) -> None:
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        kwargs: dict[str, Any] = {"dtype": dtype}
        if load_in_4bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
            kwargs["device_map"] = {"": device}
        self.backbone = AutoModel.from_pretrained(folder, **kwargs).eval()
        if not load_in_4bit:
            self.backbone.to(device)
        head = load_file(str(folder / "v_head.safetensors"))["weight"]
        self.v_head = torch.nn.Linear(head.shape[1], 1, bias=False)
        with torch.no_grad():
            self.v_head.weight.copy_(head)
        self.v_head.to(device=device, dtype=torch.float32).eval()
        self.device = device
        tok = AutoTokenizer.from_pretrained(folder)
        if tok.unk_token is None:
            raise UserError(f"{folder}: the tokenizer has no unk token; Starling pads with it")
        tok.pad_token = tok.unk_token
        tok.truncation_side = "left"  # as the card: keep the end of the response
        self.tokenizer = tok

    def rewards(self, texts: list[str], *, max_length: int, padding_side: str) -> tuple[list[float], list[bool]]:
        import torch

        tok = self.tokenizer
        tok.padding_side = padding_side
        lengths = [len(x) for x in tok(texts)["input_ids"]]
        enc = tok(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt").to(self.device)
        mask = enc["attention_mask"]
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            hidden = self.backbone(input_ids=enc["input_ids"], attention_mask=mask,
                                   position_ids=position_ids).last_hidden_state
            idx = torch.arange(mask.shape[1], device=mask.device)
            last = (mask * idx).argmax(dim=-1)
            picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            values = self.v_head(picked.float()).squeeze(-1)
        return values.tolist(), [n > max_length for n in lengths]
