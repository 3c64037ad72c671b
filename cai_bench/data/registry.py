"""The data sets cai-bench knows, and the one rule that finds each.

A data set lies, in the shared data folder's layout (`cai_bench.shared_data`), at `rel`:
a file, or a folder of `files`. It is looked for, first match wins: the variable naming
a local copy (`env`), a shared data folder named by `$CAI_BENCH_SHARED_DATA`, the copy
packaged with cai-bench, `../shared/data` beside the checkout, the copy `data fetch`
stored under `$CAI_BENCH_HOME/data/`. A copy named explicitly (the variable; for the
pipeline's CAI data, a config's data.bundled_dir: `bluedot_root`) is used or an error,
never passed over for another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cai_bench.errors import UserError
from cai_bench.paths import cai_bench_home
from cai_bench.shared_data import ENV as SHARED_ENV, find_shared

# This package's folder: the packaged data lies here in the shared data layout (bluedot_cai/...).
PACKAGED_ROOT = Path(__file__).resolve().parent

OFFLINE_VARS = ("CAI_BENCH_OFFLINE", "HF_HUB_OFFLINE")
_TRUE = ("1", "true", "yes", "on")
HHH_COMMIT = "831f7813dbafab659a526d7452f7adeac464b796"  # ConstitutionalHarmlessnessPaper, 2022-12-21
HHH_REL = "cai_paper_anthropic/evals/438HHHEvaluations.jsonl"


@dataclass(frozen=True)
class DataSet:
    """One data set: what it is, where it lies in the shared layout, its license, and (when it
    may not be shipped) the public file `data fetch` downloads and its pinned sha256."""

    name: str
    what: str
    rel: str
    license: str
    source: str
    files: tuple[str, ...] = ()
    url: str | None = None
    sha256: str | None = None
    env: str | None = None
    packaged: bool = False

    @property
    def fetchable(self) -> bool:
        return self.url is not None

    @property
    def file_name(self) -> str:
        return Path(self.rel).name


@dataclass(frozen=True)
class Found:
    """Where a data set was found: `how` is `packaged`, `fetched`, `shared data folder` or `$VAR`."""

    path: Path
    how: str


_BLUEDOT_SOURCE = "bluedot_cai project (culture-specific CAI data; cai_bench/data/NOTICE)"

REGISTRY: dict[str, DataSet] = {d.name: d for d in (
    DataSet("bluedot_sa", "GPT-4o CAI rows of cai_south_africa (SFT, preferences): pipeline data.source bundled",
            "bluedot_cai/sa", "MIT (upstream README)", _BLUEDOT_SOURCE,
            files=("sft_dataset.json", "pref_dataset.json"), packaged=True),
    DataSet("bluedot_ro", "GPT-4o CAI rows of cai_romania (SFT, preferences): pipeline data.source bundled",
            "bluedot_cai/ro", "MIT (upstream README)", _BLUEDOT_SOURCE,
            files=("sft_dataset.json", "pref_dataset.json"), packaged=True),
    DataSet("hhh", "the CAI paper's 438 HHH items: tasks hhh_alignment, hhh_alignment_response", HHH_REL,
            "none stated upstream (not shipped)",
            f"github.com/anthropics/ConstitutionalHarmlessnessPaper (commit {HHH_COMMIT[:8]})",
            url=f"https://raw.githubusercontent.com/anthropics/ConstitutionalHarmlessnessPaper/{HHH_COMMIT}/"
                "evals/438HHHEvaluations.jsonl",
            sha256="d1ee180289d3eeeb314ad862344cbd9af07f19c6d52a77524f9a1a21e7373c10", env="CAI_BENCH_HHH_PATH"),
)}


def get(name: str) -> DataSet:
    """The registered data set `name`; an unknown name is one line listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown data set {name!r}; known: {', '.join(REGISTRY)} (see `cai-bench data list`)") \
            from None


def fetched_path(ds: DataSet) -> Path:
    """Where `data fetch` keeps `ds`: `$CAI_BENCH_HOME/data/` in the shared data layout."""
    return cai_bench_home() / "data" / ds.rel


def _complete(path: Path | None, ds: DataSet) -> bool:
    if path is None:
        return False
    if ds.files:
        return path.is_dir() and all((path / f).is_file() for f in ds.files)
    return path.is_file()


def fetch_command(ds: DataSet) -> str:
    return f"cai-bench data fetch {ds.name}"


def offline_var() -> str | None:
    """The variable that turns downloads off here (`CAI_BENCH_OFFLINE` or `HF_HUB_OFFLINE`,
    as the Makefile and the tests set), or None."""
    return next((v for v in OFFLINE_VARS if os.environ.get(v, "0").strip().lower() in _TRUE), None)


def fetch_fix(ds: DataSet) -> str:
    """`run `cai-bench data fetch NAME``, saying so when downloads are off here (the command
    would refuse): the user then knows to run it where the network is allowed."""
    var = offline_var()
    if var:
        return f"run `{var}=0 {fetch_command(ds)}` where the network is allowed (downloads are off here)"
    return f"run `{fetch_command(ds)}`"


def missing_fix(ds: DataSet) -> str:
    """The fix for a missing fetchable data set, in one clause: the exact command, or a local copy."""
    return fetch_fix(ds) + (f", or set {ds.env} to a local copy" if ds.env else "")


def locate(ds: DataSet) -> Found | None:
    """Where `ds` is (see the module's order), or None. A copy named by `ds.env` that is not
    there is a one-line error, never passed over."""
    given = os.environ.get(ds.env) if ds.env else None
    if given:
        path = Path(given).expanduser()
        if path.is_dir() and not ds.files:
            path = path / ds.file_name
        if not _complete(path, ds):
            raise UserError(f"${ds.env} {given}: no such file ({ds.file_name}). Fix: point it at a copy, or unset "
                            f"it and {fetch_fix(ds)}")
        return Found(path, f"${ds.env}")
    if os.environ.get(SHARED_ENV):
        path = find_shared(ds.rel)
        if path and _complete(path, ds):
            return Found(path, "shared data folder")
    if ds.packaged and _complete(PACKAGED_ROOT / ds.rel, ds):
        return Found(PACKAGED_ROOT / ds.rel, "packaged")
    if not os.environ.get(SHARED_ENV):  # ../shared/data beside the checkout
        path = find_shared(ds.rel)
        if path and _complete(path, ds):
            return Found(path, "shared data folder")
    if ds.fetchable and fetched_path(ds).is_file():
        return Found(fetched_path(ds), "fetched")
    return None


def bluedot_root(explicit: str | Path | None = None) -> Path | None:
    """The folder holding `bluedot_cai/{sa,ro}` for the pipeline's `data.source: bundled`:
    inside `explicit` (data.bundled_dir) when given, only there; else inside
    $CAI_BENCH_SHARED_DATA when that holds one; else the copy packaged with cai-bench."""
    if explicit:
        return find_shared("bluedot_cai", explicit)
    if os.environ.get(SHARED_ENV):
        found = find_shared("bluedot_cai")
        if found is not None and found.is_dir():
            return found
    packaged = PACKAGED_ROOT / "bluedot_cai"
    return packaged if packaged.is_dir() else None


__all__ = ["DataSet", "Found", "REGISTRY", "PACKAGED_ROOT", "bluedot_root", "fetch_command", "fetch_fix", "fetched_path",
           "get", "locate", "missing_fix", "offline_var", "OFFLINE_VARS"]
