"""`--limit N` draws a seeded sample stratified by principle: the same for every
checkpoint, nested (a larger N extends a smaller one), spread over principles."""

from __future__ import annotations

from cai_bench.harness.sample import sample_task
from cai_bench.tasks import load_task


def test_stratified_sample_spreads_over_principles_and_nests() -> None:
    task = load_task("cai_south_africa")
    principles = {p.principle_id for p in task.prompts}
    assert len(principles) > 8
    s8 = sample_task(task, 8, seed=0)
    chosen = [p for p in task.prompts if p.id in set(s8.prompt_ids)]
    assert len(chosen) == 8 and len({p.principle_id for p in chosen}) == 8  # 8 principles, not one
    assert sample_task(task, 8, seed=0) == s8  # seeded: the same prompts every time (every checkpoint)
    for n in (1, 3, 20, 40):
        small, large = sample_task(task, n, seed=0), sample_task(task, n + 5, seed=0)
        assert set(small.prompt_ids) <= set(large.prompt_ids) and len(large.prompt_ids) == n + 5
    assert sample_task(task, 8, seed=1).prompt_ids != s8.prompt_ids
    # the order is the task's, and the per-principle counts add up
    order = [p.id for p in task.prompts]
    assert list(s8.prompt_ids) == sorted(s8.prompt_ids, key=order.index)
    assert sum(n for n, _ in s8.per_principle.values()) == 8
    assert sum(total for _, total in s8.per_principle.values()) == len(task.prompts) == s8.total


def test_proportional_when_larger_and_head_mode_keeps_the_old_behaviour() -> None:
    task = load_task("cai_south_africa")
    n = len(task.prompts) // 2
    half = sample_task(task, n, seed=0)
    for chosen, total in half.per_principle.values():
        assert abs(chosen - total / 2) <= 1  # every principle at about its share
    head = sample_task(task, 8, mode="head")
    assert head.prompt_ids == tuple(p.id for p in task.prompts[:8]) and head.mode == "head"
    everything = sample_task(task, None)
    assert len(everything.prompt_ids) == len(task.prompts) and everything.mode == "all"
