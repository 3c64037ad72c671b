"""The shared data folder: the local copy of the public data sets cai-bench reads
but does not ship (`bluedot_cai/`, `cai_paper_anthropic/`, `xstest/`, ...). One
rule finds it, for every reader, so a folder that one command finds another finds too."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "CAI_BENCH_SHARED_DATA"
# ../shared/data beside the checkout (this repository's tests and CI lay the data out there)
BESIDE_CHECKOUT = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data_dir(explicit: str | Path | None = None) -> Path | None:
    """The shared data folder: `explicit` when given (a config's or flag's folder), else
    $CAI_BENCH_SHARED_DATA when set, else ../shared/data beside the checkout. Only the
    first of these that is given is looked at, so a wrong setting is never passed over
    for another folder; None when that one is not a folder."""
    chosen = explicit or os.environ.get(ENV) or BESIDE_CHECKOUT
    folder = Path(chosen).expanduser()
    return folder if folder.is_dir() else None


def find_shared(rel: str | Path, explicit: str | Path | None = None) -> Path | None:
    """`rel` (e.g. `cai_paper_anthropic/evals/438HHHEvaluations.jsonl`, or `bluedot_cai`)
    inside the shared data folder, as an absolute path, or None when it is not there."""
    folder = shared_data_dir(explicit)
    if folder is None:
        return None
    found = folder / rel
    return found.resolve() if found.exists() else None
