"""Which exact files a scorer model name means, as a short revision string
recorded with every score: a hub id becomes its commit, a bundled model its
package version, a local folder its fingerprint. A name that cannot be resolved
here says so (`unresolved`) rather than pretending to be a revision."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _bundled(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    from cai_bench.models.bundled import BUNDLED

    model = BUNDLED.get(name)
    if model is None:
        return "unresolved: unknown bundled model"
    dists = packages_distributions().get(model.package) or []
    for dist in dists:
        try:
            return f"{dist}=={version(dist)}"
        except PackageNotFoundError:
            continue
    return "unresolved: package not installed"


def hub_commit(repo_id: str, revision: str | None = None) -> str | None:
    """The commit a hub id (at `revision`, default main) means: from the local
    cache when it holds it, else from the hub when reachable; None otherwise."""
    from huggingface_hub import try_to_load_from_cache

    for probe in ("config.json", "modules.json", "README.md"):
        cached = try_to_load_from_cache(repo_id, probe, revision=revision)
        if isinstance(cached, str):
            return Path(cached).parent.name  # .../snapshots/<commit>/<file>
    if revision and len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return revision
    if _offline():
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(repo_id, revision=revision).sha
    except Exception:  # noqa: BLE001 - unreachable hub or unknown repo: not resolvable here
        return None


@lru_cache(maxsize=256)
def _local(path: str, mtime_ns: int) -> str:
    from cai_bench.models.fingerprint import fingerprint_dir

    try:
        return f"fingerprint:{fingerprint_dir(Path(path))}"
    except (FileNotFoundError, OSError):
        return "unresolved: no weight files in the folder"


def model_revision(model: str | None) -> str | None:
    """Revision string for a scorer's `model` setting (None for None)."""
    if not model:
        return None
    if model.startswith("bundled:"):
        return _bundled(model.split(":", 1)[1])
    path = Path(model).expanduser()
    if path.is_dir():
        return _local(str(path.resolve()), path.stat().st_mtime_ns)
    repo, _, rev = model.removeprefix("hf:").partition("@")
    commit = hub_commit(repo, rev or None)
    return f"commit:{commit}" if commit else f"unresolved: {repo} is not cached and the hub is not reachable"
