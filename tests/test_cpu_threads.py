"""The busy-CPU hint reads the real load average and the real runnable count (a spinning child
process makes the machine busy for the test)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager

from cai_bench.cpu_threads import busy_cpu_hint, running_now


@contextmanager
def _spinning():
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        yield
    finally:
        spin.kill()
        spin.wait()


def test_hint_when_busy_and_silent_with_an_explicit_thread_count(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with _spinning():
        hints = [busy_cpu_hint(threshold=0.0) for _ in range(20)]
        if (os.cpu_count() or 1) <= 8:
            hint = next(h for h in hints if h)
            assert "load " in hint and "OMP_NUM_THREADS=1" in hint
        assert busy_cpu_hint(threshold=1e9) is None
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert busy_cpu_hint(threshold=0.0) is None


def test_running_now_counts_other_runnable_processes():
    if running_now() is None:  # not Linux
        return
    with _spinning():
        assert max(running_now() for _ in range(20)) >= 1  # the spinning child is runnable
