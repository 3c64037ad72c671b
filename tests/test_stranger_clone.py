"""Checked as a stranger would (slow): a clone in an empty folder, with no shared data
folder beside it, runs the README's set-up, `make demo`, `cai-bench data fetch hhh` (from
a loopback mirror: the public source is not reachable here) and the README's loop command
until its SFT stage starts.

This test reads `../shared/data` only to serve the HHH file over loopback HTTP, as the
paper's repository would; the clone itself never sees that folder.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_clone_in_an_empty_folder_gets_to_sft(tmp_path: Path, shared_data: Path) -> None:
    clone = tmp_path / "empty" / "cai-bench"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=300)
    assert not (clone.parent.parent / "shared").exists() and not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAI_BENCH_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(CAI_BENCH_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    times: dict[str, float] = {}

    def step(name: str, cmd: list[str], timeout: int) -> subprocess.CompletedProcess:
        started = time.perf_counter()
        res = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True, timeout=timeout)
        times[name] = time.perf_counter() - started
        assert res.returncode == 0, f"{name}: {res.stdout[-2000:]}\n{res.stderr[-3000:]}"
        return res

    step("make setup", ["make", "setup"], 1800)
    demo = step("make demo", ["make", "demo"], 1800)
    assert "Leaderboard" in demo.stdout
    server, url = _serve(shared_data)
    try:  # downloads are off under HF_HUB_OFFLINE: the README's fetch says to lift it for this one command
        res = subprocess.run([".venv/bin/cai-bench", "data", "fetch", "hhh", "--base-url", url], cwd=clone,
                             env=dict(env, HF_HUB_OFFLINE="0"), capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
    finally:
        server.shutdown()
    started = time.perf_counter()
    proc = subprocess.Popen([".venv/bin/cai-bench", "pipeline", "--task", "cai_south_africa", "--profile",
                             "cpu-small", "--out", "runs/za"], cwd=clone, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if "[3/6] sft" in line:
                break
    finally:
        proc.kill()
        proc.wait()
    times["pipeline to sft"] = time.perf_counter() - started
    text = "".join(seen)
    assert "[3/6] sft" in text, text[-3000:]
    assert "kept sft 64/64" in text  # the packaged GPT-4o data, with nothing beside the clone
    print("stranger clone times (s):", {k: round(v, 1) for k, v in times.items()})
