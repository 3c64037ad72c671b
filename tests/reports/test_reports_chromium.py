"""index.html in a real headless Chromium: it renders (non-blank screenshot) and a
stored response with <script> stays text and runs nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cai_bench.reports import write_report


FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if found:
            return found
    pytest.skip("chromium not installed: apt-get update && apt-get install -y chromium")


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    exe = _chromium()
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    try:
        return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:  # installed but broken: a failure, not a skip
        pytest.fail(f"chromium could not run here: {exc}")


@pytest.fixture(scope="module")
def page(module_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("chromium")
    return write_report(module_store, out, baseline="base", n_boot=100) / "index.html"


def test_screenshot_not_blank(page, tmp_path):
    shot = tmp_path / "shot.png"
    proc = _run([f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()], tmp_path)
    if not shot.exists():
        pytest.fail(f"chromium wrote no screenshot: {proc.stderr[-500:]}")
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (1600, 1280)
    assert img.std() > 20  # text, tables and plots, not a flat page
    assert (img < 100).mean() > 0.01  # a real share of dark pixels (header bar, text)


def test_hostile_response_is_text_and_runs_nothing(page, tmp_path, hostile):
    proc = _run(["--dump-dom", "--virtual-time-budget=2000", page.as_uri()], tmp_path)
    dom = proc.stdout
    if "<html" not in dom:
        pytest.fail(f"chromium dumped no DOM: {proc.stderr[-500:]}")
    assert "<title>cai-bench report</title>" in dom  # the stored script did not set the title
    assert "PWNED</title>" not in dom
    # the response is in the DOM as escaped text inside a <pre>, not as elements
    assert "&lt;script&gt;document.title='PWNED'&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script>alert(1)</script>" not in dom and hostile not in dom
    assert dom.count("<script") == 1  # only the page's own sorting script
    assert "&lt;b&gt;bold&lt;/b&gt;" in dom and "<b>bold</b>" not in dom
