"""Which prompts of a task a run with `--limit N` answers.

`stratified` (default): a seeded sample spread over the task's principles in
proportion to their size. Every prompt gets a key `(k + u) / n`: its rank `k` in
a seeded shuffle of its principle's `n` prompts, offset by a seeded `u` in [0, 1)
per principle; the N smallest keys win. So the sample is the same for every
checkpoint, a larger N extends a smaller one (stored answers are reused), and
N = 8 of a 22-principle task touches 8 principles, not one.
`head`: the first N prompts in task order (the old behaviour).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cai_bench.tasks import Task

LimitMode = Literal["stratified", "head"]
NO_PRINCIPLE = "(none)"


@dataclass(frozen=True)
class Sample:
    """The prompts chosen for one task, in task order, and how they were drawn."""

    task_id: str
    prompt_ids: tuple[str, ...]
    mode: str
    limit: int | None
    seed: int
    total: int
    per_principle: dict[str, tuple[int, int]] = field(default_factory=dict)  # principle -> (chosen, of)

    def as_json(self) -> dict:
        return {"mode": self.mode, "limit": self.limit, "seed": self.seed, "n": len(self.prompt_ids),
                "of": self.total, "per_principle": {k: list(v) for k, v in self.per_principle.items()},
                "prompt_ids": list(self.prompt_ids)}


def _principle(pid: str | None) -> str:
    return pid or NO_PRINCIPLE


def sample_task(task: "Task", limit: int | None, *, seed: int = 0, mode: LimitMode = "stratified") -> Sample:
    """The prompts of `task` in scope for a run (all of them when `limit` is None)."""
    order = [p.id for p in task.prompts]
    position = {pid: i for i, pid in enumerate(order)}
    if limit is None or limit >= len(order):
        chosen = set(order)
    elif mode == "head":
        chosen = set(order[:limit])
    elif mode == "stratified":
        groups: dict[str, list[str]] = defaultdict(list)
        for p in task.prompts:
            groups[_principle(p.principle_id)].append(p.id)
        keys: list[tuple[float, int, str]] = []
        for g, ids in groups.items():
            rng = random.Random(f"cai-bench:{seed}:{task.id}:{g}")
            u = rng.random()
            shuffled = list(ids)
            rng.shuffle(shuffled)
            keys += [((k + u) / len(ids), position[pid], pid) for k, pid in enumerate(shuffled)]
        chosen = {pid for _, _, pid in sorted(keys)[:limit]}
    else:  # pragma: no cover - the CLI and the config validate the mode
        raise ValueError(f"unknown limit mode {mode!r}")
    ids = tuple(pid for pid in order if pid in chosen)
    per: dict[str, list[int]] = {}
    for p in task.prompts:
        slot = per.setdefault(_principle(p.principle_id), [0, 0])
        slot[1] += 1
        slot[0] += p.id in chosen
    return Sample(task.id, ids, mode if limit is not None else "all", limit, seed, len(order),
                  {k: (v[0], v[1]) for k, v in per.items()})
