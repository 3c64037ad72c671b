"""The malformed-input corpus (issue 13 section 7): every bad input in
`malformed/cases.yaml` gives exit code 2, one line naming the file, the field
and the reason, no traceback, and writes nothing (no store, no output files)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cai_bench.cli import app

CORPUS = Path(__file__).resolve().parent / "malformed"
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))
runner = CliRunner()


def _fill(value: str, d: Path, out: Path) -> str:
    return value.replace("{d}", str(d)).replace("{out}", str(out))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the corpus with the {d}/{out} placeholders inside its files
    filled ({out} is `<copy>/../out`, emptied before each case)."""
    d = tmp_path_factory.mktemp("malformed") / "m"
    shutil.copytree(CORPUS, d)
    for f in d.rglob("*.yaml"):  # recipes name {d}/{out} inside the file
        text = f.read_text(encoding="utf-8", errors="surrogateescape")
        if "{d}" in text or "{out}" in text:
            f.write_text(_fill(text, d, d.parent / "out"), encoding="utf-8", errors="surrogateescape")
    return d


def _store_rows(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        return sum(con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables
                   if t in ("runs", "generations", "scores", "checkpoints", "prompts"))
    finally:
        con.close()


def run_case(case: dict, corpus: Path, out: Path) -> tuple[int, str, object]:
    args = [_fill(a, corpus, out) for a in case["args"]]
    res = runner.invoke(app, args, env={"COLUMNS": "400", "NO_COLOR": "1"})
    return res.exit_code, res.output, res.exception


def test_corpus_is_large_and_covers_every_kind() -> None:
    assert len(CASES) >= 50
    kinds = {c["id"].split("_")[0] for c in CASES}
    assert {"constitution", "task", "prompts", "run", "recipe", "score", "store"} <= kinds
    assert len({c["id"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_malformed_input(case: dict, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAI_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    out = corpus.parent / "out"
    shutil.rmtree(out, ignore_errors=True)
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*")}
    code, output, exc = run_case(case, corpus, out)
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert code == 2, f"exit {code}: {output!r} {exc!r}"
    assert exc is None or isinstance(exc, SystemExit), repr(exc)
    assert "Traceback" not in output
    assert len(lines) == 1, lines
    assert re.search(case["expect"], lines[0]), (case["expect"], lines[0])
    assert "SECRETPW" not in output
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    for p in written:
        if p.suffix == ".sqlite":
            assert _store_rows(p) == 0, p
    assert not [p for p in written if p.suffix != ".sqlite"], written
    assert {p: p.stat().st_mtime_ns for p in corpus.rglob("*")} == before  # the inputs are untouched
    assert not list(tmp_path.glob("cai-bench-out*"))
