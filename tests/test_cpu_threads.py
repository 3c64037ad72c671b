"""torch's thread count is chosen by measuring the CPU (a spinning child process makes
the machine busy for the test), and an explicit `--threads` or `OMP_NUM_THREADS` wins."""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from cai_bench import cpu_threads
from cai_bench.cpu_threads import choose, others_busy, running_now, set_explicit, usable_cores


@contextmanager
def _spinning():
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        yield
    finally:
        spin.kill()
        spin.wait()


@pytest.fixture(autouse=True)
def _no_explicit():
    set_explicit(None)
    yield
    set_explicit(None)


def test_explicit_threads_win_over_the_environment_and_the_measurement(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert (choose(8).threads, choose(8).source) == (3, "OMP_NUM_THREADS")
    set_explicit(5)
    assert (choose(8).threads, choose(8).source) == (5, "--threads")
    assert cpu_threads.explicit_threads() == 5


def test_a_busy_process_takes_a_core_from_torch(monkeypatch) -> None:
    """One busy loop beside this process: it is measured (about a core), and torch gets
    the cores it leaves (one fewer; never below one)."""
    if others_busy(0.05) is None:
        pytest.skip("no /proc/stat here")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = usable_cores()
    with _spinning():
        busy = max(others_busy(0.3) for _ in range(2))
        choice = choose(cores, window=0.3)
    assert busy is not None and busy >= 0.6, busy
    assert choice.source == "measured" and choice.others_busy is not None
    assert choice.threads == max(1, min(cores, cores - int(choice.others_busy + 0.5)))
    assert choice.threads <= max(1, cores - 1)
    assert f"{choice.threads} of {cores} cores" in choice.line()


def test_apply_sets_torch_and_says_a_measured_choice_once(monkeypatch, capsys) -> None:
    import torch

    monkeypatch.setattr(cpu_threads, "_state", cpu_threads._State())
    before = torch.get_num_threads()
    try:
        set_explicit(1)
        first = cpu_threads.apply("generation")
        again = cpu_threads.apply("scoring")
        assert first.threads == again.threads == 1 and torch.get_num_threads() == 1
        assert cpu_threads.last_choice() == again
        assert "torch threads" not in capsys.readouterr().err  # the user's own count goes unsaid
        if others_busy(0.05) is None:
            return
        set_explicit(None)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        measured = cpu_threads.apply("generation")
        assert measured.source == "measured" and torch.get_num_threads() == measured.threads
        assert cpu_threads.apply("scoring", min_interval=60.0) is measured  # not measured again so soon
        err = capsys.readouterr().err
        assert err.count("torch threads: ") == 1 and f"{measured.threads} of {measured.cores} cores" in err
    finally:
        torch.set_num_threads(before)


def test_running_now_counts_other_runnable_processes() -> None:
    if running_now() is None:  # not Linux
        return
    with _spinning():
        assert max(running_now() for _ in range(20)) >= 1  # the spinning child is runnable
