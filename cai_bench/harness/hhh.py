"""Score checkpoints on `hhh_alignment` by log-likelihood, through lm-eval.

The items are exported as lm-eval `multiple_choice` tasks (cai_bench.tasks.hhh)
and run with the lm-eval LM of the checkpoint's model, opened through the model
registry on the in-process HF engine (PEFT adapters included),
so the numbers are exactly what `lm_eval --tasks hhh_alignment` gives. Per item
we keep whether the right answer won and both log-likelihoods, for paired tests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cai_bench.errors import UserError
from cai_bench.tasks.hhh import RESPONSE_TASK_ID, TASK_ID, HHHItem, export_hhh_lm_eval

if TYPE_CHECKING:
    from cai_bench.models import ResolvedCheckpoint

# view -> the lm-eval metric that decides it (the response view is length-normalized)
METRIC = {TASK_ID: "acc", RESPONSE_TASK_ID: "acc_norm"}


def build_lm(ckpt: "ResolvedCheckpoint", *, batch_size: int = 8, device: str | None = None) -> Any:
    """The lm-eval LM that scores `ckpt`'s log-likelihoods: its model from the registry
    on the in-process HF engine (whatever engine generates), dtype "auto" (float32 on
    a CPU). A backend without log-likelihoods (a served model) is a one-line error."""
    from cai_bench.models import open_checkpoint
    from cai_bench.models.chat import ChatOptions

    model = open_checkpoint(ckpt, ChatOptions(engine="hf", batch_size=batch_size, device=device), load=False)
    lm = model.lm_eval_lm() if model.loglik else None
    if lm is None:
        model.close()
        raise UserError(f"{ckpt.spec}: {TASK_ID} needs log-likelihoods, so a local or hub checkpoint "
                        f"(not a {ckpt.kind} endpoint)")
    return lm


def evaluate_hhh(lm: Any, items: Sequence[HHHItem], *, views: Sequence[str] = (TASK_ID, RESPONSE_TASK_ID),
                 batch_size: int = 8, seed: int = 0) -> list[dict]:
    """One row per (view, item): {view, id, correct (0/1), ll_correct, ll_incorrect}."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from cai_bench.console import quiet_lm_eval

    if not items:
        return []
    quiet_lm_eval()
    with tempfile.TemporaryDirectory(prefix="cai-bench-hhh-") as tmp:
        names = export_hhh_lm_eval(items, Path(tmp))
        wanted = [names[v] for v in views]
        result = simple_evaluate(
            model=lm, tasks=wanted, task_manager=TaskManager(include_path=tmp, include_defaults=False),
            batch_size=batch_size, log_samples=True, use_cache=None, cache_requests=False, bootstrap_iters=0,
            random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        )
    rows: list[dict] = []
    for view in views:
        samples = (result or {}).get("samples", {}).get(names[view])
        if not samples:
            raise RuntimeError(f"lm-eval returned no samples for {names[view]}")
        for s in sorted(samples, key=lambda s: s["doc"]["id"]):
            lls = [float(r[0][0] if isinstance(r[0], (list, tuple)) else r[0]) for r in s["resps"]]
            rows.append({"view": view, "id": s["doc"]["id"], "correct": float(s[METRIC[view]]),
                         "ll_correct": lls[0], "ll_incorrect": lls[1]})
    return rows
