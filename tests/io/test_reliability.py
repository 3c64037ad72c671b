"""The reliability campaign of benchmarks/bench_reliability.py on a small scale:
a real process killed with SIGKILL at seeded random points, then run again."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_reliability.py"


@pytest.fixture(scope="module")
def bench(smollm2_dir, tmp_path_factory):  # noqa: ANN001, ANN201 - the loaded benchmark module
    spec = importlib.util.spec_from_file_location("bench_reliability", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_reliability"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    mod.tiny = mod.tiny_model(tmp_path_factory.mktemp("tiny") / "m")
    return mod


def _check(res, trials: int) -> None:  # noqa: ANN001
    assert res.trials == trials
    assert res.lost == 0 and res.duplicated == 0, res
    assert res.equal == trials, res


def test_generate_killed_then_resumed(bench, tmp_path: Path) -> None:  # noqa: ANN001
    _check(bench.campaign_generate(tmp_path, bench.tiny, 2, random.Random(1), 3), 2)


@pytest.mark.slow
def test_run_killed_then_resumed(bench, tmp_path: Path) -> None:  # noqa: ANN001
    _check(bench.campaign_run(tmp_path, bench.tiny, 2, random.Random(2), 3), 2)


@pytest.mark.slow
def test_train_killed_then_resumed(bench, tmp_path: Path) -> None:  # noqa: ANN001
    res = bench.campaign_train(tmp_path, bench.tiny, 1, random.Random(3))
    _check(res, 1)
    assert res.resumed_right == 1
