"""The folder an lm-eval export writes into (shared by the task export and the HHH views)."""

from __future__ import annotations

from pathlib import Path

from cai_bench.errors import UserError


def output_dir(path: Path) -> Path:
    """Create the export folder; a file in the way is a user error, not a traceback."""
    out = path.expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"{path}: exists and is not a folder; give a folder for the exported tasks")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{path}: cannot create the export folder ({exc.strerror})") from None
    return out
