"""Loop records: what a `cai-bench pipeline` stores so that `cai-bench report`
rebuilds its base -> SFT -> DPO section from the store alone.

A pipeline's scores are ordinary `run` results; the record adds what scores
cannot say: which checkpoint is the base, the SFT and the DPO model, which tasks
its eval covered, the guards checked right after training, the training logs,
data quality, leakage, provenance and the pipeline config. Keyed by the
pipeline's output folder, so several pipelines can share one store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cai_bench.bootstrap_settings import N_BOOT
from cai_bench.errors import UserError

ROLES = ("base", "sft", "dpo")  # the loop's checkpoints, in training order


@dataclass
class LoopRecord:
    loop_id: str
    title: str
    fingerprints: dict[str, str]  # role -> checkpoint fingerprint
    specs: dict[str, str]  # role -> checkpoint spec as the pipeline gave it
    eval_task: str  # the held-out part of the task (the guards read its answers)
    tasks: list[str]  # every task the eval stage ran: verdicts cover exactly these
    seed: int = 0
    n_boot: int = N_BOOT
    early_guards: list[dict[str, Any]] = field(default_factory=list)  # checked right after sft / dpo
    log_history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # stage -> trainer log
    quality: dict[str, Any] | None = None
    leakage: dict[str, Any] | None = None
    split: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> {seconds, cached}
    measures: dict[str, str] = field(default_factory=dict)  # "scorer.metric" -> what it measures, in words

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> "LoopRecord":
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise UserError(f"a loop record in the store is not JSON ({exc})") from None
        known = {f.name for f in fields(cls)}
        missing = {"loop_id", "title", "fingerprints", "specs", "eval_task", "tasks"} - set(raw)
        if not isinstance(raw, dict) or missing:
            raise UserError(f"a loop record in the store lacks {', '.join(sorted(missing)) or 'its fields'}")
        return cls(**{k: v for k, v in raw.items() if k in known})


def loop_id_for(out_dir: str) -> str:
    """The key of a pipeline's record: its resolved output folder (hashed: paths may be long)."""
    return hashlib.sha256(str(out_dir).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def load_loops(store_url: str) -> list[LoopRecord]:
    """Every loop recorded in the store, by title then id; none for a store without the table."""
    return [LoopRecord.from_json(text) for text in load_records(store_url, "loops", "loop_id")]


def load_records(store_url: str, table: str, key: str) -> list[str]:
    """The `record_json` of every row of a record table (`loops`, `experiments`), by title then
    key; none for a store written before the table existed."""
    from sqlalchemy import inspect, select

    from cai_bench.results import schema as S
    from cai_bench.results.load import open_for_reading

    tab = getattr(S, table)
    engine = open_for_reading(store_url)
    try:
        if not inspect(engine).has_table(table):
            return []
        with engine.connect() as conn:
            rows = conn.execute(select(tab.c.record_json).order_by(tab.c.title, tab.c[key])).all()
    finally:
        engine.dispose()
    return [r[0] for r in rows]
