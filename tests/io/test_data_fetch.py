"""`cai-bench data fetch|list` over real HTTP on loopback: a download checked against the
pinned sha256 and then found by `run -t hhh_alignment_response`; a wrong digest, a server
that is down, or downloads turned off: one line, exit code 2, nothing kept."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench import data
from cai_bench.cli import app
from cai_bench.tasks import hhh

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "pipeline" / "data" / "hhh_sample.jsonl"  # 8 real items: not the pinned file
HHH_URL_PATH = "/" + hhh.SHARED_REL.as_posix()


@pytest.fixture()
def nothing_here(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No HHH copy anywhere (no variable, an empty shared data folder, an empty home); downloads allowed."""
    monkeypatch.delenv(hhh.ENV_PATH, raising=False)
    monkeypatch.delenv(data.URL_ENV, raising=False)
    monkeypatch.setenv("CAI_BENCH_SHARED_DATA", str(tmp_path / "empty-shared"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("CAI_BENCH_OFFLINE", raising=False)
    return home


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "1000", "TQDM_DISABLE": "1"})


def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def _one_error_line(r) -> str:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output, r.output
    return lines[0]


@pytest.fixture(scope="module")
def tiny(smollm2_dir: Path, tmp_path_factory) -> Path:
    """A 2-layer Llama (random weights, SmolLM2's tokenizer), long enough for the HHH conversations."""
    from tiny_models import build_tiny_llama

    return build_tiny_llama(smollm2_dir, tmp_path_factory.mktemp("tiny") / "tiny-llama", max_position_embeddings=2048)


def test_the_pin_is_the_public_file_at_its_commit() -> None:
    ds = data.get("hhh")
    assert ds.url == ("https://raw.githubusercontent.com/anthropics/ConstitutionalHarmlessnessPaper/"
                      f"{data.registry.HHH_COMMIT}/evals/438HHHEvaluations.jsonl")


@pytest.fixture()
def real_hhh(shared_data: Path) -> Path:
    """The whole public file, where ../shared/data is beside the clone (tests marked `shared_data`)."""
    real = shared_data / hhh.SHARED_REL
    if not real.is_file():
        pytest.skip(f"{real} not present")
    return real


@pytest.mark.shared_data
def test_the_pinned_digest_is_the_public_files(real_hhh: Path) -> None:
    assert hashlib.sha256(real_hhh.read_bytes()).hexdigest() == data.get("hhh").sha256


@pytest.mark.shared_data
def test_fetch_stores_the_checked_file_and_run_finds_it(nothing_here: Path, loopback, tiny: Path, tmp_path: Path,
                                                        real_hhh: Path):
    REAL = real_hhh
    loopback.files[HHH_URL_PATH] = REAL.read_bytes()
    r = _invoke("data", "fetch", "hhh", "--base-url", loopback.url)
    assert r.exit_code == 0, r.output
    dest = nothing_here / "data" / hhh.SHARED_REL
    assert dest.read_bytes() == REAL.read_bytes() and "hhh: fetched: " in _flat(r.output)
    assert [q.path for q in loopback.requests] == [HHH_URL_PATH]
    assert not [p for p in dest.parent.iterdir() if p != dest]  # no temp file left beside it
    assert hhh.find_hhh() == (dest, "fetched")

    r = _invoke("data", "fetch", "hhh", "--base-url", loopback.url)  # already here: no second download
    assert r.exit_code == 0 and "hhh: already here" in _flat(r.output) and len(loopback.requests) == 1, r.output

    out = tmp_path / "out"  # `run` resolves the fetched copy with no --hhh-path, no variable, no shared folder
    r = _invoke("run", "-t", "hhh_alignment_response", "-c", str(tiny), "--limit", "2", "--out", str(out),
                "--batch-size", "2")
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "log-likelihood items: 2 new, 0 reused" in _flat(r.output)
    with sqlite3.connect(out / "results.sqlite") as conn:
        (meta,), = conn.execute("select metadata_json from tasks where task_id = 'hhh_alignment_response'")
        (n,), = conn.execute("select count(*) from prompts where task_id = 'hhh_alignment_response'")
    assert json.loads(meta)["data"] == str(dest) and n == 438


def test_fetch_through_the_registry_with_a_matching_digest(nothing_here: Path, loopback, monkeypatch):
    """The mechanism on any registered file (the sample under its own digest), with no ../shared beside the clone;
    the mirror comes from $CAI_BENCH_DATA_URL."""
    ds = data.DataSet("hhh_sample", "8 HHH items", "samples/hhh_sample.jsonl", "none stated upstream", "tests",
                      url="https://example.invalid/hhh_sample.jsonl",
                      sha256=hashlib.sha256(SAMPLE.read_bytes()).hexdigest())
    monkeypatch.setitem(data.REGISTRY, ds.name, ds)
    monkeypatch.setenv(data.URL_ENV, loopback.url + "/mirror/")
    loopback.files["/mirror/samples/hhh_sample.jsonl"] = SAMPLE.read_bytes()
    r = _invoke("data", "fetch", "hhh_sample")
    assert r.exit_code == 0, r.output
    dest = nothing_here / "data" / "samples" / "hhh_sample.jsonl"
    assert dest.read_bytes() == SAMPLE.read_bytes()
    assert data.locate(ds) == data.Found(dest, "fetched")


def test_a_wrong_digest_keeps_nothing(nothing_here: Path, loopback):
    loopback.files[HHH_URL_PATH] = SAMPLE.read_bytes()  # real items, but not the pinned file
    r = _invoke("data", "fetch", "hhh", "--base-url", loopback.url)
    line = _one_error_line(r)
    assert f"data fetch hhh: {loopback.url}{HHH_URL_PATH}: sha256 " in line and "is not the pinned d1ee180289d3" in line
    assert "nothing was kept" in line
    assert not (nothing_here / "data").exists()
    r = _invoke("tasks", "show", "hhh_alignment")  # still missing: the one line names the command
    assert "run `cai-bench data fetch hhh`" in _one_error_line(r)


def test_a_server_that_is_down_is_one_line(nothing_here: Path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _invoke("data", "fetch", "hhh", "--base-url", f"http://127.0.0.1:{port}")
    line = _one_error_line(r)
    assert f"could not download http://127.0.0.1:{port}{HHH_URL_PATH}: connection refused" in line
    assert "Fix: check the network" in line and not (nothing_here / "data").exists()


def test_http_errors_and_cut_bodies_are_one_line(nothing_here: Path, loopback):
    r = _invoke("data", "fetch", "hhh", "--base-url", loopback.url)  # nothing served there
    assert "HTTP 404" in _one_error_line(r)
    loopback.files[HHH_URL_PATH] = SAMPLE.read_bytes()
    loopback.cut()  # the connection closes mid-body
    r = _invoke("data", "fetch", "hhh", "--base-url", loopback.url)
    assert "could not download" in _one_error_line(r) and not (nothing_here / "data").exists()


def test_downloads_off_is_one_line_naming_the_variable(nothing_here: Path, loopback, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loopback.files[HHH_URL_PATH] = SAMPLE.read_bytes()
    r = _invoke("data", "fetch", "hhh", "--base-url", loopback.url)
    line = _one_error_line(r)
    assert "downloads are off here (HF_HUB_OFFLINE=1)" in line and "`HF_HUB_OFFLINE=0 cai-bench data fetch hhh`" in line
    assert loopback.requests == []
    r = _invoke("tasks", "show", "hhh_alignment_response")
    line = _one_error_line(r)  # a command that needs the file: the exact command, and why it cannot run here
    assert "hhh_alignment: the HHH data (438HHHEvaluations.jsonl) was not found" in line
    assert "run `HF_HUB_OFFLINE=0 cai-bench data fetch hhh` where the network is allowed" in line


def test_unknown_and_packaged_names(nothing_here: Path):
    r = _invoke("data", "fetch", "nope")
    assert "unknown data set 'nope'; known: bluedot_sa, bluedot_ro, hhh" in _one_error_line(r)
    r = _invoke("data", "fetch", "bluedot_sa")
    assert r.exit_code == 0 and "bluedot_sa: ships with cai-bench; nothing to fetch" in _flat(r.output), r.output


def test_list_says_what_is_here_where_from_and_its_license(nothing_here: Path, monkeypatch):
    r = _invoke("data", "list")
    assert r.exit_code == 0, r.output
    rows = {ln.split()[1]: _flat(ln) for ln in r.output.splitlines() if ln.startswith("│ ") and "│ name" not in ln
            and ln.split()[1] in data.REGISTRY}
    assert set(rows) == {"bluedot_sa", "bluedot_ro", "hhh"}
    for name in ("bluedot_sa", "bluedot_ro"):
        assert f"{name} yes {data.PACKAGED_ROOT / 'bluedot_cai' / name[-2:]} (packaged) MIT" in rows[name]
    out = _flat(r.output)
    assert "hhh no not found. Fix: run `cai-bench data fetch hhh`" in rows["hhh"] and "none stated upstream" in out

    fetched = nothing_here / "data" / hhh.SHARED_REL
    fetched.parent.mkdir(parents=True)
    fetched.write_bytes(SAMPLE.read_bytes())
    assert f"hhh yes {fetched} (fetched)" in _flat(_invoke("data", "list").output)
    monkeypatch.setenv(hhh.ENV_PATH, str(SAMPLE))
    assert f"hhh yes {SAMPLE} ($CAI_BENCH_HHH_PATH)" in _flat(_invoke("data", "list").output)
    monkeypatch.setenv(hhh.ENV_PATH, str(nothing_here / "missing.jsonl"))
    assert "hhh no $CAI_BENCH_HHH_PATH" in _flat(_invoke("data", "list").output)


def test_fetch_is_only_over_http(nothing_here: Path):
    r = _invoke("data", "fetch", "hhh", "--base-url", f"file://{SAMPLE.parent}")
    assert "not an http(s) URL" in _one_error_line(r)
