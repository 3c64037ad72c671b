"""A CPU run shared with other busy processes can be many times slower than it
should be: torch starts one thread per core, and when another process holds a
core those threads wait for each other at every operation. Measured here on 2
cores: one batch of 8 greedy SmolLM2 answers took 179 s with 2 threads beside a
busy process, 25 s with OMP_NUM_THREADS=1. This module only notices and says so."""

from __future__ import annotations

import os
from pathlib import Path


def busy_cpu_hint(threshold: float = 1.0) -> str | None:
    """A one-line hint when other work keeps the CPU busy and torch would use every core."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform
        return None
    cores = os.cpu_count() or 1
    if cores > 8 or load < threshold or running_now() == 0:
        return None
    return (f"the CPU is busy before this run starts (load {load:.1f} on {cores} cores): torch's {cores} threads "
            "stall each other when another process holds a core (here 7x slower); set OMP_NUM_THREADS=1 for "
            "this run, or stop the other work")


def running_now() -> int | None:
    """Other processes runnable at this instant (Linux /proc/loadavg), None where unknown: the load
    average lags by a minute, so a run started right after another one finished is not 'busy'."""
    try:
        running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(running - 1, 0)  # minus this process
