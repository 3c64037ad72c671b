"""Tiny in-process scorers with known behaviour, and the suites' data: the full
files from ../shared/data when present, else the samples in tests/validity/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from validity_toy import ToyScorer

HERE = Path(__file__).parent
SHARED = Path(os.environ.get("CAI_BENCH_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")


@pytest.fixture(autouse=True)
def _own_home(tmp_path, monkeypatch):
    """A fresh CAI_BENCH_HOME per test: validations resume from per-answer rows kept there."""
    monkeypatch.setenv("CAI_BENCH_HOME", str(tmp_path / "cai-bench-home"))


@pytest.fixture()
def toy():
    return lambda mode="perfect", **kw: ToyScorer({"mode": mode, **kw})


@pytest.fixture(scope="session")
def suite_data() -> Path:
    """Where the built-in suites' files are: ../shared/data, else the bundled samples."""
    return SHARED if SHARED.is_dir() else HERE / "data"


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return HERE / "data"


@pytest.fixture()
def toy_registered(monkeypatch):
    """The toy scorer registered under the id "toy" (as a plug-in scorer would be)."""
    from cai_bench.harness.scorers import SCORERS

    monkeypatch.setitem(SCORERS, "toy", "validity_toy:ToyScorer")
    return "toy"
