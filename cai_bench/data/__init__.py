"""Data sets cai-bench reads beyond its prompts and principles: which ones it knows,
where each is found, and `cai-bench data fetch` for those it may not ship.

Files with a redistribution license (the MIT GPT-4o CAI data of the built-in cultures)
ship in this package (`bluedot_cai/`, attribution in `NOTICE`); files without one (the
CAI paper's HHH items) are downloaded on request from their public source, checked
against a pinned sha256 and kept under `$CAI_BENCH_HOME/data/`. Nothing downloads
implicitly: a command that lacks such a file says which `data fetch` to run.
"""

from __future__ import annotations

from cai_bench.data.fetch import URL_ENV, fetch, sha256_file, source_url
from cai_bench.data.registry import (
    OFFLINE_VARS,
    PACKAGED_ROOT,
    REGISTRY,
    DataSet,
    Found,
    bluedot_root,
    fetch_command,
    fetch_fix,
    fetched_path,
    get,
    locate,
    missing_fix,
    offline_var,
)

__all__ = ["DataSet", "Found", "OFFLINE_VARS", "PACKAGED_ROOT", "REGISTRY", "URL_ENV", "bluedot_root", "fetch",
           "fetch_command", "fetch_fix", "fetched_path", "get", "locate", "missing_fix", "offline_var", "sha256_file",
           "source_url"]
