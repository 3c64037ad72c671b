"""Score a suite's labelled rows (or answer pairs) with one scorer, once, and
measure every requested metric against the labels. The scorer is called the
same way `cai-bench score` calls it (one pass, its own batch size), so
validation costs no model calls beyond scoring the rows."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Sequence

from cai_bench.errors import UserError
from cai_bench.validity import stats
from cai_bench.validity.suites import Kind, LabelledRow, Pair

if TYPE_CHECKING:
    from cai_bench.harness.scorers import MetricSpec, Scorer, ScoreInput, ScoreRow


@dataclass
class Validation:
    """One metric of one scorer config measured on one suite."""

    scorer_id: str
    config_hash: str
    metric: str
    suite: str
    agreement: stats.Agreement
    config: dict[str, Any] = field(default_factory=dict)
    caveat: str = ""
    created_at: str = ""
    seconds: float = 0.0
    seed: int = 0

    def summary(self) -> str:
        return f"{self.scorer_id}.{self.metric} on {self.suite}: {self.agreement.summary()}"


def metric_spec(scorer: "Scorer", name: str) -> "MetricSpec":
    for m in scorer.metrics:
        if m.name == name:
            return m
    raise UserError(f"scorer {scorer.id!r} has no metric {name!r}; its metrics: "
                    f"{', '.join(m.name for m in scorer.metrics)}")


def threshold_for(spec: "MetricSpec", override: float | None) -> float | None:
    """--threshold, else the metric's declared threshold, else the middle of its declared range."""
    if override is not None:
        return override
    declared = getattr(spec, "threshold", None)
    if declared is not None:
        return float(declared)
    if spec.lo is not None and spec.hi is not None:
        return (float(spec.lo) + float(spec.hi)) / 2
    return None


def _inputs(items: Sequence[LabelledRow] | Sequence[Pair], kind: Kind) -> list["ScoreInput"]:
    from cai_bench.harness.scorers import ScoreInput

    def context(meta: dict[str, str]) -> dict[str, str | None]:
        """A row's task, constitution and principle (a culture suite's): a judge judges against them."""
        return {k: meta.get(k) or None for k in ("task_id", "constitution_id", "principle_id")}

    if kind == "pairwise":
        pairs: Sequence[Pair] = items  # type: ignore[assignment]
        return [ScoreInput(key=f"{i}:{side}", prompt=p.prompt, response=text, prompt_id=p.id, **context(p.meta))
                for i, p in enumerate(pairs) for side, text in (("b", p.better), ("w", p.worse))]
    rows: Sequence[LabelledRow] = items  # type: ignore[assignment]
    return [ScoreInput(key=str(i), prompt=r.prompt, response=r.response, reference=r.reference, prompt_id=r.id,
                       **context(r.meta)) for i, r in enumerate(rows)]


def score_items(scorer: "Scorer", items: Sequence[LabelledRow] | Sequence[Pair], kind: Kind,
                progress: Any = None, manage: bool = True, resume: bool = True) -> dict[tuple[str, str], "ScoreRow"]:
    """{(key, metric): row} for every input and metric; with `manage` the scorer is
    loaded and closed here, else the caller did load it (once for many suites).
    With `resume`, answers this scorer config already scored (`rowcache`) are not sent again."""
    from cai_bench.harness.scorers import ScoreRow
    from cai_bench.harness.scoring import batch_size_of, score_inputs
    from cai_bench.validity.rowcache import RowCache, text_key

    inputs = _inputs(items, kind)
    got: dict[tuple[str, str], ScoreRow] = {}
    metrics = [m.name for m in scorer.metrics]
    cache = RowCache(scorer.id, scorer.config_hash)
    keys = {x.key: text_key(x.prompt, x.response, x.reference) for x in inputs}
    pending = []
    for x in inputs:
        hit = cache.get(keys[x.key], metrics) if resume else None
        if hit is None:
            pending.append(x)
            continue
        for m, (value, status, error) in hit.items():
            got[(x.key, m)] = ScoreRow(x.key, m, value, status, error)  # type: ignore[arg-type]
    bar = progress.add_task(f"validate {scorer.id}", total=len(inputs)) if progress is not None else None
    if bar is not None:
        progress.advance(bar, len(inputs) - len(pending))

    def save(batch: list, rows: list) -> None:
        for r in rows:
            got[(r.key, r.metric)] = r
        cache.add([(keys[r.key], r) for r in rows])
        if bar is not None:
            progress.advance(bar, len(batch))

    manage = manage and bool(pending)  # everything cached: no model to load
    if manage:
        try:
            scorer.load()
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - a scorer that cannot load is a user-facing failure
            raise UserError(f"scorer {scorer.id!r} could not load: {type(exc).__name__}: {exc}") from None
    try:
        score_inputs(scorer, pending, batch_size_of(scorer), save)
    finally:
        if manage:
            scorer.close()
    return got


def _status(row: "ScoreRow | None") -> str:
    if row is None:
        return "error"
    if row.status == "ok" and (row.value is None or not math.isfinite(row.value)):
        return "error"
    return row.status


def _count(statuses: list[str]) -> stats.Counts:
    return stats.Counts(total=len(statuses), valid=statuses.count("ok"), unscored=statuses.count("unscored"),
                        error=statuses.count("error"), na=statuses.count("na"))


def agreement_for(got: dict[tuple[str, str], "ScoreRow"], items: Sequence[LabelledRow] | Sequence[Pair],
                  kind: Kind, spec: "MetricSpec", *, threshold: float | None, positive_is: str,
                  seed: int = 0, n_boot: int = stats.N_BOOT) -> stats.Agreement:
    """Figures for one metric from the scored rows; every row (or pair) is counted."""
    name = spec.name
    if kind == "pairwise":
        statuses, better, worse = [], [], []
        for i in range(len(items)):
            b, w = got.get((f"{i}:b", name)), got.get((f"{i}:w", name))
            sb, sw = _status(b), _status(w)
            s = next((x for x in ("error", "unscored", "na") if x in (sb, sw)), "ok")
            statuses.append(s)
            if s == "ok":
                better.append(b.value)  # type: ignore[union-attr]
                worse.append(w.value)  # type: ignore[union-attr]
        return stats.pairwise_agreement(better, worse, _count(statuses), direction=spec.direction,
                                        seed=seed, n_boot=n_boot)
    statuses, values, labels = [], [], []
    for i, r in enumerate(items):
        row = got.get((str(i), name))
        s = _status(row)
        statuses.append(s)
        if s == "ok":
            values.append(row.value)  # type: ignore[union-attr]
            labels.append(r.label)  # type: ignore[union-attr]
    counts = _count(statuses)
    if kind == "binary":
        return stats.binary_agreement(values, [int(v) for v in labels], counts, direction=spec.direction,
                                      threshold=threshold, positive_is=positive_is, seed=seed, n_boot=n_boot)
    return stats.graded_agreement(values, labels, counts, direction=spec.direction, positive_is=positive_is,
                                  seed=seed, n_boot=n_boot)


def validate(scorer: "Scorer", items: Sequence[LabelledRow] | Sequence[Pair], kind: Kind,
             metrics: Sequence[str], *, suite: str, positive_is: str = "bad", threshold: float | None = None,
             seed: int = 0, caveat: str = "", progress: Any = None, manage: bool = True, resume: bool = True,
             n_boot: int = stats.N_BOOT) -> list[Validation]:
    """Score `items` once and measure each of `metrics` against their labels."""
    if not items:
        raise UserError(f"suite {suite!r} has no rows")
    specs = [metric_spec(scorer, m) for m in metrics]
    t0 = time.perf_counter()
    got = score_items(scorer, items, kind, progress, manage, resume)
    seconds = time.perf_counter() - t0
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = []
    for spec in specs:
        agreement = agreement_for(got, items, kind, spec, threshold=threshold_for(spec, threshold),
                                  positive_is=positive_is, seed=seed, n_boot=n_boot)
        out.append(Validation(scorer.id, scorer.config_hash, spec.name, suite, agreement,
                              scorer.config.public_dict(), caveat, created, seconds, seed))
    return out
