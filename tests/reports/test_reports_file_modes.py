"""Report files are for sharing: they get the mode the umask gives (issue 17.9), not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app


@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o027, 0o640)])
def test_report_files_follow_the_umask(store, tmp_path, umask, expected):
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        result = CliRunner().invoke(app, ["report", "--out", str(out), "--store", store, "--no-show",
                                          "--format", "html,md,csv", "--n-boot", "50"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    files = [p for p in (out / "report").rglob("*") if p.is_file()] + [out / "leaderboard.csv"]
    assert len(files) > 5
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {expected}, modes
    dir_mode = stat.S_IMODE((out / "report" / "plots").stat().st_mode)
    assert dir_mode == 0o777 & ~umask


def test_atomic_directory_follows_the_umask(tmp_path):
    from cai_bench.paths import atomic_directory

    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "made") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o755
