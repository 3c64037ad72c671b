"""`data.source: bundled` from a bare install: the GPT-4o CAI rows of the built-in cultures
ship in the package (cai_bench/data/bluedot_cai), so the pipeline's data stage needs no
shared data folder and no variable; an explicit data.bundled_dir or $CAI_BENCH_SHARED_DATA
still wins. The packaged files are what scripts/build_builtin_data.py copies, as NOTICE says."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

from cai_bench import shared_data
from cai_bench.data import PACKAGED_ROOT, bluedot_root
from cai_bench.pipeline import build_config
from cai_bench.pipeline.stages import bundled_root, stage_data, stage_task

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def bare(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $CAI_BENCH_SHARED_DATA and no ../shared/data reachable: a clone in an empty folder."""
    monkeypatch.delenv(shared_data.ENV, raising=False)
    monkeypatch.delenv("CAI_BENCH_HHH_PATH", raising=False)
    monkeypatch.setattr(shared_data, "BESIDE_CHECKOUT", tmp_path / "no-shared-beside-the-checkout")
    return home


def test_the_data_stage_reads_the_packaged_copy(bare: Path, tmp_path: Path) -> None:
    out = tmp_path / "za"
    cfg = build_config({"task": "cai_south_africa", "profile": "cpu-small", "out": str(out)})
    assert cfg.data_source == "bundled" and cfg.data.bundled_dir is None
    assert bundled_root(cfg) == PACKAGED_ROOT / "bluedot_cai"
    task = stage_task(cfg, out / "task")
    result = stage_data(cfg, out / "data", task)
    assert str(PACKAGED_ROOT / "bluedot_cai" / "sa") in result.generator
    assert result.total == {"sft": 64, "prefs": 64} and result.kept["sft"] == 64  # docs/pipeline.md, measured here
    info = json.loads((out / "data" / "dataset_info.json").read_text())
    assert info["source"] == "bundled" and info["splits"]["sft"]["train"] == 64


def test_an_explicit_folder_still_wins(bare: Path, public_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = build_config({"task": "cai_romania", "data": {"bundled_dir": str(public_data)}})
    assert bundled_root(cfg) == (public_data / "bluedot_cai").resolve()
    monkeypatch.setenv(shared_data.ENV, str(public_data))
    assert bluedot_root() == (public_data / "bluedot_cai").resolve()
    monkeypatch.setenv(shared_data.ENV, str(public_data / "xstest"))  # a data folder without bluedot_cai/
    assert bluedot_root() == PACKAGED_ROOT / "bluedot_cai"
    assert bluedot_root(public_data / "xstest") is None  # data.bundled_dir is never passed over


def test_notice_lists_the_digest_of_every_packaged_file() -> None:
    notice = (PACKAGED_ROOT / "NOTICE").read_text(encoding="utf-8")
    listed = dict((rel, digest) for digest, rel in re.findall(r"^ +([0-9a-f]{64})  (\S+)$", notice, re.M))
    packaged = {p.relative_to(PACKAGED_ROOT).as_posix(): p for p in PACKAGED_ROOT.rglob("*.json")}
    assert set(listed) == set(packaged) == {f"bluedot_cai/{c}/{n}_dataset.json" for c in ("sa", "ro")
                                             for n in ("sft", "pref")}
    for rel, path in packaged.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == listed[rel], rel
    assert "MIT License" in notice and "Permission is hereby granted" in notice


def test_the_build_script_copies_exactly_those_files(public_data: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_builtin_data", ROOT / "scripts/build_builtin_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "in").mkdir()
    src = tmp_path / "in"
    for rel in mod.CAI_DATA_FILES:  # the sample has SA rows only: give RO the same bytes for the copy
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes((public_data / rel.replace("/ro/", "/sa/")).read_bytes())
    copies = mod.copy_cai_data(src, tmp_path / "out")
    assert [c.relative_to(tmp_path / "out").as_posix() for c in copies] == list(mod.CAI_DATA_FILES)
    assert all(c.read_bytes() == (src / c.relative_to(tmp_path / "out")).read_bytes() for c in copies)
    first = (tmp_path / "out" / "NOTICE").read_bytes()
    mod.copy_cai_data(src, tmp_path / "out")
    assert (tmp_path / "out" / "NOTICE").read_bytes() == first  # deterministic
    assert (PACKAGED_ROOT / "NOTICE").read_text().split("  sha256:")[0] == first.decode().split("  sha256:")[0]
