"""The busy-CPU hint reads the real load average; the threshold decides."""

from __future__ import annotations

import os

from cai_bench.cpu_threads import busy_cpu_hint


def test_hint_follows_the_load_and_respects_an_explicit_thread_count(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    hint = busy_cpu_hint(threshold=0.0)
    if (os.cpu_count() or 1) <= 8:
        assert hint is not None and "load " in hint
        assert "OMP_NUM_THREADS=1" in hint
    assert busy_cpu_hint(threshold=1e9) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert busy_cpu_hint(threshold=0.0) is None
