"""How many threads torch uses on the CPU, chosen by measuring the CPU at run time.

torch starts one intra-op thread per core; when another process holds a core,
those threads wait for each other at every operation (OpenMP barriers). Measured
on 2 cores: one batch of 8 greedy SmolLM2 answers took 179 s with 2 threads
beside a busy process, 25 s with 1 (7x). So before torch work starts, and again
before each long phase, `apply()` measures how much CPU other processes use
(/proc/stat over a short window, minus this process's own time) and gives torch
the cores left, never more than its own default. `--threads N` (`set_explicit`)
and then `OMP_NUM_THREADS` win over the measurement.

Only the intra-op count can change after torch is loaded (`torch.set_num_threads`).
The OpenMP wait policy (`OMP_WAIT_POLICY`, libgomp's spinning) and the inter-op
pool are fixed when torch loads or first runs, so they are left as they are: with
the count measured, no thread spins waiting for a core another process holds.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("cai_bench.threads")

WINDOW_S = 0.2  # how long the CPU is watched before a choice
BUSY_CORE = 0.5  # a core counts as taken once another process uses at least this share of it


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count torch was given, and why (kept in a run's provenance)."""

    threads: int
    source: str  # "--threads" | "OMP_NUM_THREADS" | "measured" | "default"
    cores: int  # cores this process may run on
    default: int  # torch's own count before any choice
    others_busy: float | None = None  # cores other processes kept busy during the window

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        if self.source == "measured":
            why = (f"other processes kept {self.others_busy:.1f} of {self.cores} cores busy"
                   if self.others_busy is not None else "the CPU's use could not be read")
            return (f"torch threads: {self.threads} of {self.cores} cores ({why}; "
                    "--threads N or OMP_NUM_THREADS to choose)")
        return f"torch threads: {self.threads} (from {self.source})"


@dataclass
class _State:
    explicit: int | None = None  # --threads
    default: int | None = None  # torch's count before we changed it
    last: ThreadChoice | None = None
    measured_at: float = 0.0  # time.monotonic() of the last choice


_state = _State()


def set_explicit(threads: int | None) -> None:
    """`--threads N` for this process (None: choose by measurement); the next `apply` chooses anew."""
    _state.explicit = threads if threads and threads > 0 else None
    _state.measured_at = 0.0


def explicit_threads() -> int | None:
    """The `--threads` given to this process, if any (passed on to worker processes)."""
    return _state.explicit


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _cpu_ticks(cpus: set[int] | None) -> tuple[int, int] | None:
    """(busy, total) jiffies summed over `cpus` (all when None), from /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, *fields = line.split()
        wanted = name == "cpu" if cpus is None else name[3:].isdigit() and name.startswith("cpu") and int(name[3:]) in cpus
        if not wanted:
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(values)
        busy += sum(values) - values[3] - values[4]
    return (busy, total) if total else None


def _self_ticks() -> int | None:
    """This process's user + system jiffies (all its threads)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def others_busy(window: float = WINDOW_S) -> float | None:
    """Cores that other processes kept busy over the next `window` seconds (on the
    cores this process may use); None where /proc cannot tell (not Linux)."""
    try:
        cpus: set[int] | None = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = None
    first, mine = _cpu_ticks(cpus), _self_ticks()
    if first is None or mine is None:
        return None
    time.sleep(window)
    second, mine2 = _cpu_ticks(cpus), _self_ticks()
    if second is None or mine2 is None or second[1] <= first[1]:
        return None
    n = len(cpus) if cpus else (os.cpu_count() or 1)
    busy = (second[0] - first[0]) - (mine2 - mine)
    return max(0.0, min(float(n), busy / (second[1] - first[1]) * n))


def _env_threads() -> int | None:
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        return None
    return value if value > 0 else None


def choose(default: int, window: float = WINDOW_S) -> ThreadChoice:
    """The thread count for the next phase: `--threads`, else `OMP_NUM_THREADS`, else the
    cores other processes leave free (at least 1, at most torch's `default`)."""
    cores = usable_cores()
    if _state.explicit is not None:
        return ThreadChoice(_state.explicit, "--threads", cores, default)
    if (env := _env_threads()) is not None:
        return ThreadChoice(env, "OMP_NUM_THREADS", cores, default)
    busy = others_busy(window)
    if busy is None:
        return ThreadChoice(default, "default", cores, default)
    taken = math.floor(busy + (1.0 - BUSY_CORE))
    return ThreadChoice(max(1, min(default, cores - taken)), "measured", cores, default, round(busy, 2))


def apply(phase: str = "", *, min_interval: float = 0.0) -> ThreadChoice:
    """Measure, give torch the chosen count (importing torch: call it where torch work
    follows), and print the choice the first time and whenever it changes. Within
    `min_interval` seconds of the last choice, that one stands (loops call this per batch)."""
    import torch

    if _state.default is None:
        _state.default = torch.get_num_threads()
    if _state.last is not None and time.monotonic() - _state.measured_at < min_interval:
        return _state.last
    choice = choose(_state.default)
    _state.measured_at = time.monotonic()
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    previous, _state.last = _state.last, choice
    # a measured count is said once, and again when it changes; one the user gave goes unsaid
    said = previous is not None and previous.source == "measured"
    if choice.source == "measured" and (not said or previous.threads != choice.threads):  # type: ignore[union-attr]
        from cai_bench.console import err_console, quiet

        if not quiet():
            where = f" (now, before {phase})" if phase and previous is not None else ""
            err_console.print(choice.line() + where, style="dim", markup=False, highlight=False, soft_wrap=True)
    log.debug("%s%s", choice.line(), f" ({phase})" if phase else "")
    return choice


def last_choice() -> ThreadChoice | None:
    """The choice in force (None before the first `apply`)."""
    return _state.last


def running_now() -> int | None:
    """Other processes runnable at this instant (Linux /proc/loadavg), None where unknown."""
    try:
        running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(running - 1, 0)  # minus this process
