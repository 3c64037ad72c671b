"""Per-answer scores of a validation, kept as they arrive, so a validation that is
killed (a judge on CPU can take hours) resumes where it stopped: one JSONL file
per scorer config under `$CAI_BENCH_HOME/validity/rows/`, keyed by a hash of the
text the scorer saw. Failed calls ("error" rows) are not kept: a re-run retries them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cai_bench.hashing import digest
from cai_bench.paths import cai_bench_home


def text_key(prompt: str, response: str, reference: str | None) -> str:
    return digest([prompt, response, reference], length=32, compact=False)  # the form kept rows are keyed by


class RowCache:
    """{text key: {metric: (value, status, error)}} for one scorer config."""

    def __init__(self, scorer_id: str, config_hash: str, root: Path | None = None) -> None:
        self.path = (root or cai_bench_home() / "validity" / "rows") / scorer_id / f"{config_hash}.jsonl"
        self.rows: dict[str, dict[str, tuple[float | None, str, str | None]]] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    d = json.loads(line)
                    self.rows.setdefault(d["k"], {})[d["m"]] = (d["v"], d["s"], d.get("e"))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a kill: that answer is scored again

    def get(self, key: str, metrics: list[str]) -> dict[str, tuple[float | None, str, str | None]] | None:
        have = self.rows.get(key)
        return have if have is not None and all(m in have for m in metrics) else None

    def add(self, items: list[tuple[str, Any]]) -> None:
        """Append (text key, ScoreRow) pairs, except error rows; flushed and fsynced per call."""
        keep = [(k, r) for k, r in items if r.status != "error"]
        if not keep:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for k, r in keep:
                f.write(json.dumps({"k": k, "m": r.metric, "v": r.value, "s": r.status, "e": r.error}) + "\n")
                self.rows.setdefault(k, {})[r.metric] = (r.value, r.status, r.error)
            f.flush()
            os.fsync(f.fileno())
