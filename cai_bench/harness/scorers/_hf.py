"""Shared bits for the in-process Hugging Face scorers: where a model comes
from (hub id, local dir or bundled spec), device and dtype choice."""

from __future__ import annotations

from pathlib import Path

from cai_bench.errors import UserError
from cai_bench.io import hub_offline


def local_or_hub(model: str) -> str:
    """A local folder as is; a `bundled:`/`hf:` spec resolved; else a hub id for from_pretrained."""
    if model.startswith(("bundled:", "hf:")):
        from cai_bench.models import resolve_checkpoint

        return resolve_checkpoint(model).model
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{model}: expected a model folder")
        return str(path)
    return model


def needs_download(model: str) -> bool:
    """True for a hub model that is not in the local cache (loading it would download)."""
    if Path(model).expanduser().is_dir() or model.startswith("bundled:"):
        return False
    from huggingface_hub import try_to_load_from_cache

    return not isinstance(try_to_load_from_cache(model.removeprefix("hf:"), "config.json"), str)


def hub_reason(model: str) -> str | None:
    """Why a hub model cannot load here (offline and not cached), or None."""
    offline = hub_offline()
    if offline and needs_download(model):
        return f"model {model.removeprefix('hf:')!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1"
    return None


def pick_device(device: str | None) -> str:
    if device:
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def pick_dtype(name: str, device: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return getattr(torch, name)
    except AttributeError:
        raise UserError(f"scorer config: dtype {name!r} is not a torch dtype (float32, bfloat16, float16)") from None


def load_error(scorer: str, model: str, exc: Exception) -> UserError:
    return UserError(f"scorer {scorer}: cannot load model {model!r}: {type(exc).__name__}: {exc}")
