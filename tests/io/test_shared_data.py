"""One rule finds the shared data folder (`cai_bench.shared_data`): an explicit
folder, else $CAI_BENCH_SHARED_DATA, else ../shared/data beside the checkout; only
the first one given is looked at."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai_bench import shared_data as rule
from cai_bench.shared_data import BESIDE_CHECKOUT, ENV, find_shared, shared_data_dir
from cai_bench.tasks import hhh

REL = Path("cai_paper_anthropic") / "evals" / "438HHHEvaluations.jsonl"


def _folder(root: Path) -> Path:
    (root / REL).parent.mkdir(parents=True)
    (root / REL).write_text("{}\n", encoding="utf-8")
    (root / "bluedot_cai").mkdir()
    return root


def test_explicit_then_env_then_beside_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given, env = _folder(tmp_path / "given"), _folder(tmp_path / "env")
    monkeypatch.setenv(ENV, str(env))
    assert shared_data_dir(given) == given
    assert shared_data_dir() == env
    monkeypatch.delenv(ENV)
    beside = _folder(tmp_path / "beside")
    monkeypatch.setattr(rule, "BESIDE_CHECKOUT", beside)  # the test suite hides the real one (tests/conftest.py)
    assert shared_data_dir() == beside
    monkeypatch.setattr(rule, "BESIDE_CHECKOUT", tmp_path / "nothing")
    assert shared_data_dir() is None
    from data_folders import SHARED_DATA

    assert BESIDE_CHECKOUT == SHARED_DATA  # the folder the tests hide from every test not marked shared_data


def test_a_wrong_setting_is_not_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _folder(tmp_path / "env")
    monkeypatch.setenv(ENV, str(env))
    assert shared_data_dir(tmp_path / "missing") is None  # not the env's folder instead
    assert find_shared("bluedot_cai", tmp_path / "missing") is None
    monkeypatch.setenv(ENV, str(tmp_path / "missing"))
    assert shared_data_dir() is None  # not the folder beside the checkout instead
    assert find_shared(REL) is None


def test_find_shared_names_a_file_or_folder_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "data")
    monkeypatch.setenv(ENV, str(root))
    assert find_shared(REL) == (root / REL).resolve()
    assert find_shared("bluedot_cai") == (root / "bluedot_cai").resolve()
    assert find_shared("xstest") is None
    monkeypatch.delenv(hhh.ENV_PATH, raising=False)
    assert hhh.find_hhh() == ((root / REL).resolve(), "shared data folder")  # the HHH task uses the same rule
