"""`cai-bench run --workers N`: N local worker processes on one run and store.

Each worker is an ordinary `run` (harness.runner.run) in its own process
(spawn: CUDA and vLLM do not survive fork); they share the work through the
store's leases (harness.leases). The parent only deletes what `--force` asks
for (once, before any worker starts), shows the store's progress while they
run, and sums their results. Workers on other machines join the same run with
a plain `cai-bench run ... --store postgresql://...` (docs/scale.md).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from dataclasses import replace
from concurrent.futures import ProcessPoolExecutor, wait
from typing import Any

from cai_bench.console import safe
from cai_bench.errors import UserError
from cai_bench.harness.config import RunConfig
from cai_bench.harness.runner import RunResult

log = logging.getLogger("cai_bench.harness")


def _worker(cfg_json: str, level: int, threads: int | None = None) -> RunResult:
    """One worker process: quiet (the parent draws progress), no report; `--threads` as the parent's."""
    from cai_bench.console import configure
    from cai_bench.cpu_threads import set_explicit
    from cai_bench.harness.runner import run

    configure(min(level, -1))
    set_explicit(threads)
    os.environ["TQDM_DISABLE"] = "1"
    return run(RunConfig.model_validate_json(cfg_json))


def _force_once(cfg: RunConfig, url: str) -> None:
    """`--force` with several workers: delete the scope's responses and scores here,
    once, so that no worker deletes another's fresh results."""
    from cai_bench.harness.runner import make_plan
    from cai_bench.harness.scoring import prepare_scorers
    from cai_bench.results import Store

    plan = make_plan(cfg)
    store = Store(url)
    try:
        for scorer, _ in prepare_scorers(cfg.scorers, download=cfg.download_models):
            if scorer is not None:
                store.delete_scores(plan.units, scorer.id, scorer.config_hash)
        for u in plan.units:
            store.delete_generations(u)
    finally:
        store.close()


def run_workers(cfg: RunConfig, n: int) -> list[RunResult]:
    """Run `n` workers to completion; their results, in start order."""
    from pathlib import Path

    from cai_bench.console import make_progress, verbosity
    from cai_bench.cpu_threads import explicit_threads
    from cai_bench.results import make_engine, normalize_url

    out_dir = Path(cfg.out).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    url = normalize_url(cfg.store, str(out_dir))
    if cfg.force:
        _force_once(cfg, url)
    child = cfg.model_copy(update={"force": False, "store": url,
                                   "workers": cfg.workers.model_copy(update={"count": 1})})
    engine = make_engine(url)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool, make_progress() as progress:
        futures = [pool.submit(_worker, child.model_dump_json(), verbosity.level, explicit_threads())
                   for _ in range(n)]
        bars: dict[Any, Any] = {}
        while True:
            done, running = wait(futures, timeout=1.0)
            _show(engine, progress, bars)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                for f in running:
                    f.cancel()
                exc = failed[0].exception()
                if isinstance(exc, UserError):
                    raise exc
                raise UserError(f"a worker failed: {type(exc).__name__}: {exc}")
            if not running:
                break
    engine.dispose()
    return [f.result() for f in futures]


def _show(engine: Any, progress: Any, bars: dict[Any, Any]) -> None:
    """Progress bars from the lease table (what every worker has done)."""
    from cai_bench.harness.leases import progress as lease_progress

    try:
        rows = lease_progress(engine)
    except Exception:  # noqa: BLE001 - a progress view never stops the run
        return
    for p in rows:
        key = (p.kind, p.fingerprint, p.task_id, p.scorer_id)
        label = f"score {p.scorer_id}" if p.kind == "score" else f"generate {p.label} x {p.task_id}"
        if key not in bars:
            bars[key] = progress.add_task(safe(label), total=p.items_total)  # markup and control characters inert
        progress.update(bars[key], total=p.items_total, completed=p.items_done)


def combine(results: list[RunResult]) -> RunResult:
    """One summary for the user: counts summed over the workers."""
    first = results[0]
    total = RunResult(first.run_id, first.store_url, first.out_dir)
    for r in results:
        total.generated += r.generated
        total.scored += r.scored
        total.models_loaded += r.models_loaded
        total.generation_errors += r.generation_errors
        total.loglik_scored += r.loglik_scored
        total.units_done += r.units_done
    total.generations_reused = min(r.generations_reused for r in results)
    total.scores_reused = min(r.scores_reused for r in results)
    total.loglik_reused = min(r.loglik_reused for r in results)
    total.scorers = [replace(st, scored=sum(s.scored for r in results for s in r.scorers if s.id == st.id),
                             available=all(s.available for r in results for s in r.scorers if s.id == st.id))
                     for st in first.scorers]
    total.seconds = max(r.seconds for r in results)
    return total
