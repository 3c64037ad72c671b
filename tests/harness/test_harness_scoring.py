"""Scorer preparation (`all`, unavailable with reasons), the similarity scorer on the
real MiniLM, and `cai-bench score` on a jsonl file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.errors import UserError
from cai_bench.harness.config import ScorerEntry
from cai_bench.harness.scorers import SCORERS, ScoreInput
from cai_bench.harness.scoring import expand_entries, prepare_scorers


def test_all_expands_to_every_registered_scorer() -> None:
    got = expand_entries([ScorerEntry(id="similarity", settings={"batch_size": 8}), ScorerEntry(id="all")])
    assert [e.id for e in got] == list(SCORERS)
    assert got[0].settings == {"batch_size": 8}
    with pytest.raises(UserError, match="listed twice"):
        expand_entries([ScorerEntry(id="similarity"), ScorerEntry(id="similarity")])


def test_prepare_lists_unavailable_with_reasons(minilm_dir: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # nothing listens there
    prepared = prepare_scorers([ScorerEntry(id="all")])
    status = {st.id: st for _, st in prepared}
    assert set(status) == set(SCORERS)
    assert status["similarity"].available
    for sid, st in status.items():
        if not st.available:
            assert st.reason, sid
    assert not status["moderation"].available  # no key here
    with pytest.raises(UserError, match="unknown scorer"):
        prepare_scorers([ScorerEntry(id="nope")])
    with pytest.raises(UserError, match="similarity"):
        prepare_scorers([ScorerEntry(id="similarity", settings={"bogus": 1})])


def test_similarity_scores_and_na(minilm_dir: Path) -> None:
    from cai_bench.harness.scorers import build_scorer

    s = build_scorer("similarity")
    assert s.available() == (True, "")
    s.load()
    rows = s.score([
        ScoreInput("1", "p", "The cat sat on the mat.", reference="A cat is sitting on a mat."),
        ScoreInput("2", "p", "The cat sat on the mat.", reference="Stock markets fell sharply today."),
        ScoreInput("3", "p", "anything", reference=None),
    ])
    by = {r.key: r for r in rows}
    assert by["1"].status == "ok" and by["1"].value > by["2"].value
    assert -1.0 <= by["2"].value <= 1.0
    assert by["3"].status == "na" and by["3"].value is None


def test_score_command_on_jsonl(tmp_path: Path, minilm_dir: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"id": "a", "prompt": "hi", "response": "Hello, friend.", "reference": "Hi, friend."}) + "\n"
        + json.dumps({"id": "b", "prompt": "q", "response": "r", "task": "cai_south_africa"}) + "\n"
    )
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["score", str(src), "--scorer", "similarity", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert 0.3 < rows[0]["similarity.similarity"] <= 1.0
    assert rows[1]["similarity.similarity"] is None and rows[1]["similarity.similarity.status"] == "na"
    res = CliRunner().invoke(app, ["score", str(src), "--scorer", "similarity"])  # stdout jsonl
    assert res.exit_code == 0 and '"similarity.similarity"' in res.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "prompt": "x"}\n')
    res = CliRunner().invoke(app, ["score", str(bad), "--scorer", "similarity"])
    assert res.exit_code == 2 and "bad.jsonl:1" in res.output and "response" in res.output


def test_missing_scorer_module_is_unavailable_not_fatal(monkeypatch) -> None:  # noqa: ANN001
    from cai_bench.harness import scorers

    monkeypatch.setitem(scorers.SCORERS, "ghost", "cai_bench.harness.scorers.no_such_module:Ghost")
    prepared = prepare_scorers([ScorerEntry(id="ghost"), ScorerEntry(id="similarity")])
    (s0, st0), (s1, st1) = prepared
    assert s0 is None and not st0.available and "no_such_module" in st0.reason
    assert s1 is not None and st1.available


def test_failing_batch_becomes_error_rows() -> None:
    from cai_bench.harness.scorers import MetricSpec, Scorer, ScoreRow
    from cai_bench.harness.scoring import score_inputs

    class Flaky(Scorer):
        id = "flaky"
        metrics = (MetricSpec("a", "higher"), MetricSpec("b", "lower"))

        def score(self, batch: list[ScoreInput]) -> list[ScoreRow]:
            if batch[0].key == "0":
                raise RuntimeError("server said 500")
            return [ScoreRow.ok(x.key, "a", 1.0) for x in batch]  # forgets metric b

    got: list[ScoreRow] = []
    score_inputs(Flaky(), [ScoreInput(str(i), "p", "r") for i in range(4)], 2, lambda b, rows: got.extend(rows))
    by = {(r.key, r.metric): r for r in got}
    assert len(by) == 8
    assert by[("0", "a")].status == "error" and "500" in by[("0", "a")].error
    assert by[("2", "a")].status == "ok" and by[("2", "b")].status == "error"


def test_default_scorer_set_never_downloads(minilm_dir: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Online but with an empty cache: `all` may fetch hub models only when asked for."""
    from cai_bench.harness.config import default_config

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    cfg = default_config()
    assert cfg.download_models is False
    status = {st.id: st for _, st in prepare_scorers(cfg.scorers, download=cfg.download_models)}
    assert status["similarity"].available  # bundled MiniLM
    for sid, repo in (("helpfulness", "berkeley-nest/Starling-RM-7B-alpha"),
                      ("harmlessness", "s-nlp/roberta_toxicity_classifier")):
        assert not status[sid].available and repo in status[sid].reason
        assert f"--scorer {sid}" in status[sid].reason
    named = {st.id: st for _, st in prepare_scorers([ScorerEntry(id="harmlessness")])}
    assert named["harmlessness"].available  # named explicitly: it may download

