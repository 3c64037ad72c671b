"""The reliability campaign of benchmarks/bench_reliability.py on a small scale:
a real process killed with SIGKILL at seeded random points, then run again; and
the loopback fault server behind every remote path, then the same command again."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from benchmark_module import load_benchmark

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_reliability.py"



@pytest.fixture(scope="module")
def bench(smollm2_dir, tmp_path_factory):  # noqa: ANN001, ANN201 - the loaded benchmark module
    mod = load_benchmark("bench_reliability")
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


def test_every_remote_path_records_faults_and_a_rerun_fills_them(tmp_path: Path, home: Path) -> None:
    """`run` (openai:, ollama:, moderation, judge on openai and ollama), `score` with
    moderation and `generate` (openai:, ollama:) through the real CLI and clients
    against the loopback server, two fault kinds each (every kind on some path,
    each queued max_attempts times): the command exits 0 with one failed unit per
    fault recorded, and the same command again fills them, 0 duplicated. (`tasks
    synthesize`: tests/generation/test_generation_synthesize.py; all paths with
    every fault: the benchmark.)"""
    sys.path.insert(0, str(BENCH.parent))
    import reliability_faults as rf

    finish = load_benchmark("bench_reliability").finish
    paths = [p for p in rf.PATHS if not p.startswith("synthesize")]
    kinds = rf.FAULTS
    results = []
    for i, path in enumerate(paths):
        faults = (kinds[(2 * i) % len(kinds)], kinds[(2 * i + 1) % len(kinds)])
        results += rf.campaign_remote(tmp_path, random.Random(i), finish, (path,), faults)
    assert {f for r in results for f in r.faults} == set(kinds)
    assert all(r.ok for r in results), rf.table(results)
