"""Experiment records: what a `cai-bench experiment` stores so that `cai-bench
report` rebuilds its comparison section from the store alone.

An experiment is several pipelines (variants) sharing one results store; each
variant records its own `LoopRecord`. This record adds what the loops cannot
say: which axes were varied, which value of each axis a variant took, which
variants stopped before a verdict (the quality gate, a failure) and how the
comparisons' p-values are corrected. Keyed by the experiment's output folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from cai_bench.errors import UserError

Correction = Literal["holm", "bh"]
VariantStatus = Literal["done", "gate", "failed", "pending"]


@dataclass
class VariantRecord:
    name: str  # the folder under <out>/variants/, e.g. "data.selection=random,train_seed=1"
    values: dict[str, Any]  # axis -> the value this variant took
    loop_id: str | None = None  # its pipeline's LoopRecord in the same store (None before its report stage)
    status: VariantStatus = "pending"
    reason: str | None = None  # why a variant has no verdict: the gate's result, the error's one line
    gate: dict[str, Any] | None = None  # the data stage's quality figures when the gate stopped it


@dataclass
class ExperimentRecord:
    experiment_id: str
    title: str
    axes: dict[str, list[Any]]  # axis (a pipeline config key, dotted) -> its values, in the file's order
    variants: list[VariantRecord]
    correction: Correction = "holm"
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)  # the experiment file as given (base + vary)
    stage_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> {computed, shared}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> "ExperimentRecord":
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise UserError(f"an experiment record in the store is not JSON ({exc})") from None
        required = {"experiment_id", "title", "axes", "variants"}
        if not isinstance(raw, dict) or required - set(raw):
            missing = sorted(required - set(raw)) if isinstance(raw, dict) else []
            raise UserError(f"an experiment record in the store lacks {', '.join(missing) or 'its fields'}")
        known = {f.name for f in fields(cls)}
        vknown = {f.name for f in fields(VariantRecord)}
        raw = {k: v for k, v in raw.items() if k in known}
        raw["variants"] = [VariantRecord(**{k: v for k, v in var.items() if k in vknown}) for var in raw["variants"]]
        return cls(**raw)


def experiment_id_for(out_dir: str) -> str:
    """The key of an experiment's record: its resolved output folder (hashed: paths may be long)."""
    return hashlib.sha256(("experiment:" + str(out_dir)).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def load_experiments(store_url: str) -> list[ExperimentRecord]:
    """Every experiment recorded in the store, by title then id; none for a store without the table."""
    from cai_bench.results.loops import load_records

    return [ExperimentRecord.from_json(text) for text in load_records(store_url, "experiments", "experiment_id")]
