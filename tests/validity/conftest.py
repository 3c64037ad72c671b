"""Tiny in-process scorers with known behaviour, and the suites' data: the samples in
tests/validity/data, or for tests marked `shared_data` the full files in ../shared/data when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from validity_toy import ToyScorer

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _own_home(tmp_path, monkeypatch):
    """A fresh CAI_BENCH_HOME per test: validations resume from per-answer rows kept there."""
    monkeypatch.setenv("CAI_BENCH_HOME", str(tmp_path / "cai-bench-home"))


@pytest.fixture()
def toy():
    return lambda mode="perfect", **kw: ToyScorer({"mode": mode, **kw})


@pytest.fixture()
def suite_data(request: pytest.FixtureRequest) -> Path:
    """Where the built-in suites' files are: ../shared/data for a test marked `shared_data` where it is
    present, else the samples here."""
    from data_folders import SHARED_DATA

    marked = request.node.get_closest_marker("shared_data") is not None
    return SHARED_DATA if marked and SHARED_DATA.is_dir() else HERE / "data"


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return HERE / "data"


@pytest.fixture()
def toy_registered(monkeypatch):
    """The toy scorer registered under the id "toy" (as a plug-in scorer would be)."""
    from cai_bench.harness.scorers import SCORERS

    monkeypatch.setitem(SCORERS, "toy", "validity_toy:ToyScorer")
    return "toy"
