"""The cheapest cases of benchmarks/bench_hostile.py (the hostile-input campaign)
through the benchmark's own runner, so the benchmark keeps working: real CLI
processes, each row exit 2 in one line, no traceback, no hang, nothing written."""

from __future__ import annotations

from pathlib import Path

from benchmark_module import load_benchmark



def test_cheapest_hostile_cases_pass_through_the_benchmark_runner(tmp_path: Path) -> None:
    bench = load_benchmark("bench_hostile")
    rows = bench.campaign(["alias_bomb", "surrogate", "import"], tmp_path, cap=60.0)
    assert len(rows) == 6 + 2 + 6
    for r in rows:
        assert r.ok, (r.case, r.out.code, r.out.stdout[-1000:], r.out.stderr[-1000:])
        assert not r.out.hang and not r.traceback
    refusals = [r for r in rows if r.out.code == 2]
    assert len(refusals) == 13 and all(r.one_line == "yes" for r in refusals)
    assert [r.kept for r in rows if r.case.startswith("3 import")] == ["yes"] * 6  # no output file written
    table = bench.markdown(rows, tmp_path)
    assert len(table.splitlines()) == 2 + len(rows) and str(tmp_path) not in table
    assert "aliases expand to" in table and "4,000,044 bytes" in table
