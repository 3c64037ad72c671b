"""Turn a checkpoint spec into something a backend can load, with a fingerprint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cai_bench.errors import MissingDependency, UserError
from cai_bench.io import hub_offline
from cai_bench.models.bundled import BUNDLED
from cai_bench.models.fingerprint import fingerprint_dir, fingerprint_text
from cai_bench.models.specs import (
    BundledSpec,
    CheckpointSpec,
    HubSpec,
    LocalSpec,
    parse_spec,
)

# "hf" and "peft" are local weights; "openai", "ollama" and any kind a backend
# registers (cai_bench.models.registry) are served.
Kind = str


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """What a backend needs: `model` is a local dir (hf/peft) or a served model name.

    For `peft`, `model` is the resolved base model dir/id and `adapter` the adapter dir.
    `is_local` asks the model registry, the one place that knows which kinds are local.
    """

    spec: str
    kind: Kind
    model: str
    fingerprint: str
    label: str
    adapter: str | None = None
    base_url: str | None = None
    metadata: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_local(self) -> bool:
        from cai_bench.models.registry import is_local_kind

        return is_local_kind(self.kind)


def resolve_checkpoint(spec: str | CheckpointSpec, *, openai_base_url: str | None = None,
                       ollama_host: str | None = None, base_url: str | None = None) -> ResolvedCheckpoint:
    """Local forms are resolved here; a served spec (`openai:`, `ollama:`, a plugin's
    `KIND:NAME`) by its backend class, which fingerprints what identifies it (for
    endpoints: the one a run will actually call, so its config, else the environment).
    `base_url` is the endpoint for whichever served kind the spec names;
    `openai_base_url` / `ollama_host` apply to their kind only and win over it."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if isinstance(parsed, BundledSpec):
        model = BUNDLED[parsed.name]
        if model.kind != "causal-lm":
            raise UserError(f"{parsed}: is a {model.kind}, not a chat model checkpoint")
        path = model.prepare()
        return ResolvedCheckpoint(str(parsed), "hf", str(path), fingerprint_dir(path), parsed.name)
    if isinstance(parsed, HubSpec):
        path = hub_snapshot(parsed.repo_id, parsed.revision)
        return ResolvedCheckpoint(
            str(parsed), "hf", str(path), fingerprint_text("hf", parsed.repo_id, path.name),
            parsed.repo_id.split("/")[-1], metadata={"repo_id": parsed.repo_id, "commit": path.name},
        )
    if isinstance(parsed, LocalSpec):
        return _resolve_local(parsed)
    from cai_bench.models.registry import backend_class

    url = {"openai": openai_base_url, "ollama": ollama_host}.get(parsed.kind) or base_url
    return backend_class(parsed.kind).resolve(parsed.model, url)


def _label(path: Path) -> str:
    # runs/train/sft/checkpoint-10 -> sft/checkpoint-10: readable and usually unique
    parts = path.parts[-2:] if path.name.startswith("checkpoint-") else path.parts[-1:]
    return "/".join(parts)


def _resolve_local(spec: LocalSpec) -> ResolvedCheckpoint:
    path = spec.path
    if not spec.is_adapter:
        if not (path / "config.json").is_file():
            raise UserError(f"{path}: not a checkpoint (no config.json or adapter_config.json)")
        try:
            fp = fingerprint_dir(path)
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from None
        return ResolvedCheckpoint(str(path), "hf", str(path), fp, _label(path))
    cfg_file = path / "adapter_config.json"
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{cfg_file}: unreadable adapter config ({exc})") from None
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise UserError(f"{cfg_file}: field base_model_name_or_path is missing; cannot find the base model")
    base_resolved = _resolve_base(str(base), cfg_file)
    try:
        fp = fingerprint_text("peft", base_resolved.fingerprint, fingerprint_dir(path))
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    return ResolvedCheckpoint(
        str(path), "peft", base_resolved.model, fp, _label(path), adapter=str(path),
        metadata={"base": base_resolved.spec, "base_fingerprint": base_resolved.fingerprint},
    )


def _resolve_base(base: str, cfg_file: Path) -> ResolvedCheckpoint:
    """An adapter's base may be a local dir, a cai-bench spec, or a hub id."""
    if base.startswith(("bundled:", "hf:")) or Path(base).expanduser().is_dir():
        return resolve_checkpoint(base)
    try:
        return resolve_checkpoint(f"hf:{base}")
    except UserError as exc:
        raise UserError(f"{cfg_file}: base model {base!r}: {exc}") from None


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """Local snapshot dir of a hub repo; downloads only when the hub is reachable."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - transformers always brings it
        raise MissingDependency("huggingface_hub", "pip install huggingface_hub") from None
    offline = hub_offline()
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=offline))
    except LocalEntryNotFoundError:
        raise UserError(
            f"hf:{repo_id} is not in the local Hugging Face cache and the hub is unreachable"
            f"{' (HF_HUB_OFFLINE=1)' if offline else ''}. Fix: run `huggingface-cli download {repo_id}` "
            "where the hub is reachable, or pass a local directory"
        ) from None
    except Exception as exc:  # network/auth errors from the hub client
        raise UserError(f"hf:{repo_id}: could not fetch from the hub: {type(exc).__name__}: {exc}") from None
