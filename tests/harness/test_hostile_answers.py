"""Hostile model text through `run` with an `openai:` checkpoint (the real
`openai` client against tests/loopback.py): an answer with lone surrogates or
NUL, and an answer far past the generation limit. Both are stored (made
storable at `Store.insert_generations`, the one place answers enter the store)
with a `[cai-bench: answer ...]` line saying what was done; nothing crashes and
the same command again has nothing left to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.io import ANSWER_MARKER, MIN_ANSWER_BYTES, answer_byte_cap, clean_text
from cai_bench.cli import app
from loopback import Loopback


def _run(out: Path, *extra: str) -> str:
    res = CliRunner().invoke(app, ["run", "-c", "openai:hostile", "-t", "cai_south_africa", "-n", "2",
                                   "--max-new-tokens", "256", "-s", "similarity", "-o", str(out), *extra])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "Traceback" not in res.output
    return res.output


def _responses(out: Path) -> list[str]:
    con = sqlite3.connect(out / "results.sqlite")
    try:
        return [r for (r,) in con.execute("select response from generations order by prompt_id")]
    finally:
        con.close()


@pytest.fixture()
def served(loopback: Loopback, monkeypatch: pytest.MonkeyPatch) -> Loopback:
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return loopback


def test_lone_surrogates_and_nul_in_an_answer_are_stored_replaced_and_flagged(
        tmp_path: Path, served: Loopback, minilm_dir: Path) -> None:
    """Before: UnicodeEncodeError in insert_generations, the chunk lost, the same on every re-run."""
    served.chat_text = lambda body: "half \ud800 of a pair, a NUL \x00 and \udfff end"
    text = _run(tmp_path, "--no-report")
    assert "new: 2 responses, 2 scored" in text
    responses = _responses(tmp_path)
    assert len(responses) == 2
    for r in responses:
        assert r.startswith("half \ufffd of a pair, a NUL \ufffd and \ufffd end\n")
        assert r.endswith(f"{ANSWER_MARKER}answer 3 code points that cannot be stored (lone surrogates, NUL) "
                          "replaced by U+FFFD]")
    again = _run(tmp_path, "--no-report")
    assert "generation models loaded: 0" in again and len(served.chat_requests) == 2


def test_an_answer_past_the_generation_limit_is_cut_at_the_byte_cap(
        tmp_path: Path, served: Loopback, minilm_dir: Path) -> None:
    """Before: a 50 MB answer to max_new_tokens 256 was stored whole (100 MB index.html, 762 MB RSS)."""
    big = "é" + "x" * 50_000_000  # a 2-byte character first: the cut lands on a character boundary
    served.chat_text = lambda body: big
    _run(tmp_path)
    cap = answer_byte_cap(256)
    assert cap == MIN_ANSWER_BYTES == 65_536
    for r in _responses(tmp_path):
        body, _, note = r.rpartition("\n")
        assert len(body.encode("utf-8")) <= cap and body.startswith("éxxx")
        assert note == f"{ANSWER_MARKER}answer truncated to 65,536 of 50,000,002 bytes]"
    assert (tmp_path / "results.sqlite").stat().st_size < 2_000_000
    assert sum(p.stat().st_size for p in tmp_path.rglob("*.html")) < 2_000_000


def test_clean_text_cap_follows_max_new_tokens() -> None:
    assert answer_byte_cap(None) == answer_byte_cap(16) == 65_536
    assert answer_byte_cap(4096) == 4096 * 64
    assert clean_text("plain ✓", 10) == ("plain ✓", None)
    cut, note = clean_text("ab✓✓", 4)  # ✓ is 3 bytes: the cut drops a half character
    assert cut == f"ab\n{ANSWER_MARKER}answer truncated to 4 of 8 bytes]" and note
