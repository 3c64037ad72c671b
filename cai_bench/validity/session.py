"""What `cai-bench scorers validate` does: pick the scorers, the suites (or the
user's labelled file) and the metrics, load each scorer once, validate it on
every suite that has metrics for it, and say why anything was skipped."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from cai_bench.errors import UserError
from cai_bench.validity.run import Validation, validate
from cai_bench.validity.suites import (
    DEFAULT_SUITES,
    Kind,
    LabelledRow,
    Pair,
    get_suite,
    label_kind,
    read_labelled,
    read_pairs,
    read_table,
)


@dataclass
class Target:
    """Labelled items plus how to read them, from a suite or an --against file."""

    name: str
    kind: Kind
    items: list[LabelledRow] | list[Pair]
    metrics: dict[str, tuple[str, ...]]  # scorer id -> default metrics
    positive_is: str
    caveat: str = ""
    culture: str | None = None  # the culture all its items come from (a culture suite, or a --by culture part)

    @property
    def stored_name(self) -> str:
        """The suite name a validation is stored under; a culture's is marked `[culture=XX]`,
        which the reports read to flag a leaderboard cell per culture."""
        if self.culture and culture_of(self.name) is None:
            return f"{self.name}[culture={self.culture}]"
        return self.name


@dataclass
class Skipped:
    scorer: str
    suite: str
    reason: str


@dataclass
class Outcome:
    validations: list[Validation] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


DEFAULT_SAMPLE = 40  # rows (or pairs) per suite `scorers validate` scores unless told --sample all
SPLIT_COLUMNS = ("culture", "language")
_CULTURE = re.compile(r"\[culture=([^\]]+)\]")


def culture_of(suite_name: str) -> str | None:
    """The culture a stored validation is for (`name[culture=ZA]...`), or None."""
    m = _CULTURE.search(suite_name)
    return m.group(1) if m else None


def parse_sample(text: str | None) -> int | None:
    """`--sample N|all`: N rows per suite, or None for all of them."""
    if text is None:
        return DEFAULT_SAMPLE
    t = str(text).strip().lower()
    if t == "all":
        return None
    try:
        n = int(t)
    except ValueError:
        raise UserError(f"--sample {text!r}: expected a number of rows or 'all'") from None
    if n < 1:
        raise UserError(f"--sample {text!r}: expected at least 1 row, or 'all'")
    return n


def split_targets(targets: Sequence[Target], column: str) -> list[Target]:
    """Each target cut into one part per value of `column` (a suite's culture or language),
    named `suite[column=value]`; a target whose rows lack the column is an input error."""
    out = []
    for t in targets:
        groups: dict[str, list] = {}
        missing = 0
        for item in t.items:
            value = item.meta.get(column)
            if value in (None, ""):
                missing += 1
                continue
            groups.setdefault(str(value), []).append(item)
        if missing:
            cols = sorted({k for item in t.items for k in item.meta})
            raise UserError(f"suite {t.name!r}: {missing} of {len(t.items)} rows have no {column!r} column to split "
                            f"by (--by {column}); its columns: {', '.join(cols) or 'none besides the text'}")
        for value, items in sorted(groups.items()):
            out.append(Target(f"{t.name}[{column}={value}]", t.kind, items, t.metrics, t.positive_is, t.caveat,
                              value if column == "culture" else t.culture))
    return out


def subsample(items: list, limit: int | None, seed: int) -> list:
    """A seeded random subset of `limit` items, in their original order."""
    if limit is None or limit >= len(items):
        return items
    import numpy as np

    keep = sorted(np.random.default_rng(seed).choice(len(items), size=limit, replace=False).tolist())
    return [items[i] for i in keep]


def against_target(path: Path, label: str | None, kind: Kind | None, positive_is: str | None) -> Target:
    """A user's labelled file: {prompt, response, <label>, reference?} rows, or
    {prompt, better|chosen, worse|rejected} pairs (kind pairwise, or detected)."""
    rows = read_table(path)
    if not rows:
        raise UserError(f"{path}: no rows")
    if kind == "pairwise" or (kind is None and label is None and ("chosen" in rows[0] or "better" in rows[0])):
        return Target(path.name, "pairwise", read_pairs(rows, path), {}, "bad")
    if not label:
        raise UserError(f"{path}: say which column holds the human label with --label COLUMN")
    if label not in rows[0]:
        cols = ", ".join(k for k in rows[0] if k != "_line")
        raise UserError(f"{path}:{rows[0]['_line']}: label column {label!r} not found (columns: {cols})")
    kind = kind or label_kind([r.get(label) for r in rows])
    items = read_labelled(rows, path, label, kind)
    return Target(path.name, kind, items, {}, positive_is or ("good" if kind == "graded" else "bad"))


def suite_targets(names: Sequence[str], data: Path | None) -> tuple[list[Target], list[Skipped]]:
    """Targets for suite names ("default" expands to the built-in set); a suite whose
    data cannot be found is skipped with the reason when several were asked for."""
    expanded: list[str] = []
    for n in names:
        expanded += list(DEFAULT_SUITES) if n == "default" else [n]
    targets, skipped = [], []
    for n in dict.fromkeys(expanded):
        suite = get_suite(n)
        try:
            items = suite.load(data)
        except UserError as exc:
            if len(expanded) == 1:
                raise
            skipped.append(Skipped("*", suite.name, exc.message))
            continue
        caveat = suite.caveat
        targets.append(Target(suite.name, suite.kind, items, suite.metrics, suite.positive_is, caveat,
                              suite.culture))
    return targets, skipped


def run_session(scorers: Sequence[Any], targets: Sequence[Target], *, metrics: Sequence[str] = (),
                threshold: float | None = None, seed: int = 0, limit: int | None = None,
                explicit: bool = True, progress: Any = None, resume: bool = True) -> Outcome:
    """Validate each scorer instance on each target. `metrics` overrides the
    suites' defaults; without it, a suite that names no metric for a scorer is
    skipped (or, when `explicit` and it is the user's own file, every metric is used)."""
    out = Outcome()
    for scorer in scorers:
        plan = []
        for t in targets:
            wanted = list(metrics) or list(t.metrics.get(scorer.id, ()))
            if not wanted and not t.metrics and explicit:
                wanted = [m.name for m in scorer.metrics]
            if not wanted:
                out.skipped.append(Skipped(scorer.id, t.name, f"suite {t.name!r} validates no metric of "
                                           f"{scorer.id} (give --metric to choose one)"))
                continue
            plan.append((t, wanted))
        if not plan:
            continue
        try:
            scorer.load()
        except UserError as exc:
            out.skipped += [Skipped(scorer.id, t.name, f"could not load: {exc.message}") for t, _ in plan]
            continue
        except Exception as exc:  # noqa: BLE001 - reported, the other scorers go on
            out.skipped += [Skipped(scorer.id, t.name, f"could not load: {type(exc).__name__}: {exc}")
                            for t, _ in plan]
            continue
        try:
            for t, wanted in plan:
                if not getattr(scorer, "remote", False):  # an in-process scorer model: threads for the free cores
                    from cai_bench.cpu_threads import apply

                    apply(f"validating {scorer.id}", min_interval=30.0)
                items = subsample(t.items, limit, seed)
                name = t.stored_name
                name = name if limit is None or limit >= len(t.items) else f"{name}[{len(items)}/{len(t.items)}]"
                out.validations += validate(scorer, items, t.kind, wanted, suite=name, positive_is=t.positive_is,
                                            threshold=threshold, seed=seed, caveat=t.caveat, progress=progress,
                                            manage=False, resume=resume)
        finally:
            scorer.close()
    return out
