"""`cai-bench run --workers 2` on a real PostgreSQL store with a tiny in-process
model: the work is shared, every response and score stored once, each unit
worked once; `cai-bench status` shows it; a second plain worker finds nothing to do."""

from __future__ import annotations

from pathlib import Path

import pytest
import pg_cluster
from typer.testing import CliRunner

from cai_bench.cli import app


@pytest.fixture(scope="module")
def tiny_model(smollm2_dir: Path, tmp_path_factory) -> Path:
    """A 2-layer, 64-wide Llama with SmolLM2's tokenizer: random text, generated in milliseconds."""
    from tiny_models import build_tiny_llama

    return build_tiny_llama(smollm2_dir, tmp_path_factory.mktemp("tiny") / "tiny-llama")


_q = pg_cluster.query


def test_two_local_workers_share_a_postgresql_run(tiny_model: Path, pg_url: str, tmp_path: Path) -> None:
    args = ["run", "--checkpoint", str(tiny_model), "--task", "cai_south_africa", "--limit", "8",
            "--chunk-size", "2", "--max-new-tokens", "4", "--scorer", "similarity", "--store", pg_url,
            "--out", str(tmp_path / "out"), "--no-report", "--lease-seconds", "30"]
    res = CliRunner().invoke(app, [*args, "--workers", "2"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "new: 8 responses, 8 scored" in res.output
    assert _q(pg_url, "select count(*), count(distinct prompt_id) from generations") == [(8, 8)]
    assert _q(pg_url, "select count(*), sum(case when status = 'ok' then 1 else 0 end) from scores") == [(8, 8)]
    units = _q(pg_url, "select kind, status, worked from work_units order by kind, seq")
    assert [u[0] for u in units] == ["generate"] * 4 + ["score"]
    assert all(u[1:] == ("done", 1) for u in units)  # every unit worked exactly once
    assert len(_q(pg_url, "select distinct run_id from generations")) >= 1
    assert _q(pg_url, "select count(*) from runs where status = 'finished'") == [(2,)]

    status = CliRunner().invoke(app, ["status", "--store", pg_url])
    assert status.exit_code == 0, status.output
    assert "8/8" in status.output and "4/4" in status.output and "similarity" in status.output

    again = CliRunner().invoke(app, args)  # a late worker: everything is stored, no model loaded
    assert again.exit_code == 0, again.output
    assert "reused from store: 8 responses, 8 scored responses; new: 0 responses, 0 scored" in again.output
    assert "generation models loaded: 0" in again.output


def test_status_on_a_missing_store_is_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["status", "--store", str(tmp_path / "nope.sqlite")])
    assert res.exit_code == 2 and "no results store" in res.output
