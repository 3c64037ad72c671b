"""Which engine answers for local checkpoints when a config says `engine: auto`.

vLLM is only worth its server start (about 80 s for SmolLM2 on an idle 2-core CPU,
several minutes on a busy one) where it generates faster than transformers. On a
GPU it does. On a CPU it did when the CPU was idle (1.7-2.2x at batch 16-64,
docs/scale.md), but beside one busy process it was the slower one (same 32
prompts: transformers on one thread 127 tok/s, vLLM 46-53): vLLM's CPU
workers pin every core and wait on the one that is taken. So `auto` measures
instead of trusting the name: vLLM where it is installed and either a GPU is
there or the CPU has no other runnable work during a short look.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cai_bench.errors import UserError

Engine = Literal["hf", "vllm"]
# On a CPU a server start (about 80 s for SmolLM2 on an idle 2-core machine) pays only for enough work: at
# transformers' 112-147 tok/s there (batch 16-64) and vLLM about 2x that, the start is won back after
# about 2 x 80 s of transformers' generation, ~20k new tokens. Less planned work stays on transformers.
CPU_MIN_NEW_TOKENS = 20_000
INSTALL_HINT = ("install it with `pip install -e '.[vllm]'` (or `make setup VLLM=1`), or point "
                "generation.vllm.python / CAI_BENCH_VLLM_PYTHON at an environment that has it (docs/scale.md)")


@dataclass(frozen=True)
class EngineChoice:
    engine: Engine
    reason: str  # one line, printed by the command that chose


def vllm_importable(python: str | None = None) -> bool:
    """Whether the interpreter that would run the server has vLLM: this one is asked
    without importing it (an import takes seconds and loads torch extensions), another
    one (generation.vllm.python, $CAI_BENCH_VLLM_PYTHON) by a subprocess."""
    python = python or os.environ.get("CAI_BENCH_VLLM_PYTHON")
    if not python or _same_python(python):
        return importlib.util.find_spec("vllm") is not None
    try:
        done = subprocess.run([python, "-c", "import importlib.util as u, sys; "
                               "sys.exit(0 if u.find_spec('vllm') else 1)"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _same_python(python: str) -> bool:
    try:
        return Path(python).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


def cpu_contended(seconds: float = 1.0, samples: int = 5) -> bool | None:
    """Whether other work is runnable on this CPU during a short look (Linux
    /proc/loadavg, sampled `samples` times over `seconds`): most samples show at
    least one other runnable process beside this one (a busy process always shows;
    a blip of this process's own threads or a short command does not). None where unknown."""
    from cai_bench.cpu_threads import running_now

    seen: list[int] = []
    for i in range(samples):
        n = running_now()
        if n is None:
            return None
        seen.append(n)
        if i + 1 < samples:
            time.sleep(seconds / max(samples - 1, 1))
    return sorted(seen)[len(seen) // 2] > 0


def choose_engine(setting: Literal["auto", "hf", "vllm"], *, python: str | None = None, cuda: bool | None = None,
                  contended: bool | None = None, new_tokens: int | None = None,
                  what: str = "eval.engine") -> EngineChoice:
    """`hf` and `vllm` as asked (`vllm` without vLLM is a user error); `auto`: vLLM where
    installed and faster here (a GPU; or a CPU with nothing else runnable and at least
    CPU_MIN_NEW_TOKENS of planned work, `new_tokens`, None: unknown, so enough), else
    transformers. `cuda`/`contended` default to looking at this machine."""
    if setting == "hf":
        return EngineChoice("hf", f"{what}: hf")
    installed = vllm_importable(python)
    if setting == "vllm":
        if not installed:
            raise UserError(f"{what}: vllm, but vLLM is not installed for {python or sys.executable}; {INSTALL_HINT}")
        return EngineChoice("vllm", f"{what}: vllm")
    if not installed:
        return EngineChoice("hf", f"{what}: auto -> hf (vLLM is not installed)")
    if cuda is None:
        from cai_bench.models.vllm_server import _cuda_here

        cuda = _cuda_here()
    if cuda:
        return EngineChoice("vllm", f"{what}: auto -> vllm (installed, CUDA GPU)")
    if new_tokens is not None and new_tokens < CPU_MIN_NEW_TOKENS:
        return EngineChoice("hf", f"{what}: auto -> hf (vLLM installed, but on a CPU {new_tokens} planned new tokens "
                                  f"do not pay for a server start; from {CPU_MIN_NEW_TOKENS})")
    if contended is None:
        contended = cpu_contended()
    if contended or contended is None:
        return EngineChoice("hf", f"{what}: auto -> hf (vLLM installed, but other work is running on this CPU, "
                                  "where vLLM measured slower than transformers on one thread; docs/scale.md)")
    return EngineChoice("vllm", f"{what}: auto -> vllm (installed; the CPU had no other runnable work)")
