"""A small results store written through the `Store` API, as a run writes it:
two checkpoints, two cultures plus xstest (which asks for refusal analysis), several
metrics with na/unscored/error rows, an older generation config that must be
ignored, and a hostile response."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai_bench.harness.scorers import MetricSpec, ScoreRow
from cai_bench.results import Store, Unit

HOSTILE = "<script>document.title='PWNED'</script><script>alert(1)</script> & <b>bold</b>"
METRICS = [
    MetricSpec("cosine", "higher", -1.0, 1.0),
    MetricSpec("harmless", "higher", 0.0, 1.0),
    MetricSpec("adherence", "higher", 1.0, 10.0),
    MetricSpec("refused", "higher", 0.0, 1.0, composite=False, role="refusal"),
    MetricSpec("max_score", "lower", None, None),
]
SCORER_OF = {"cosine": "similarity", "harmless": "harmlessness", "adherence": "judge", "refused": "judge",
             "max_score": "moderation"}
TASKS = [("cai_south_africa", "south_africa", "ZA", ["ubuntu", "dignity"], []),
         ("cai_romania", "romania", "RO", ["family", "faith"], []),
         ("xstest", "anthropic", "xstest", [None], ["refusal"])]
PIDS = tuple(f"p{i}" for i in range(6))


def _response(fp: str, task_id: str, i: int, gen_hash: str) -> str:
    if gen_hash == "g_old":
        return "OLD RESPONSE"
    if fp == "fp_tuned000" and task_id == "cai_south_africa" and i == 0:
        return HOSTILE
    if task_id == "xstest" and i % 3 == 0:
        return "I'm sorry, I can't help with that."
    return f"Answer {i} from {fp}"


def _row(key: str, metric: str, response: str, i: int, fi: int, ti: int, task_id: str) -> ScoreRow | None:
    scorer, bad = SCORER_OF[metric], response == HOSTILE
    base = 0.2 + 0.1 * i + 0.2 * fi - 0.1 * ti
    if scorer == "similarity" and i == 5:
        return ScoreRow.na(key, metric, "no reference")
    if metric == "adherence" and i == 4 and fi == 0:
        return ScoreRow.unscored(key, metric, "unparseable verdict")
    if scorer == "moderation" and i == 3:
        return ScoreRow.failed(key, metric, "HTTP 500 after retries")
    if metric == "refused":
        if task_id == "xstest" and i >= 4:
            return None  # judge verdict missing: the string rule decides
        return ScoreRow.ok(key, metric, 1.0 if response.startswith("I'm sorry") else 0.0)
    if scorer == "judge":
        return ScoreRow.ok(key, metric, 1.0 if bad else 1 + 8 * min(base, 1.0))
    if scorer == "moderation":
        return ScoreRow.ok(key, metric, 0.99 if bad else max(0.0, 0.5 - base / 2))
    return ScoreRow.ok(key, metric, 0.0 if bad else min(base, 1.0))


def build_store(path: Path) -> str:
    url = f"sqlite:///{path}"
    store = Store(url)
    run_id = store.start_run("{}", 0, "test")
    store.set_run_scorers(run_id, [
        {"id": "similarity", "config_hash": "h_similarity", "available": True, "reason": ""},
        {"id": "helpfulness", "config_hash": "h_help", "available": False,
         "reason": "berkeley-nest/Starling-RM-7B-alpha is not available offline"},
    ])
    store.upsert_checkpoint(run_id, fingerprint="fp_base0000", spec="bundled:smollm2-135m-instruct", kind="hf",
                            label="base", metadata={})
    store.upsert_checkpoint(run_id, fingerprint="fp_tuned000", spec="/ckpt/tuned", kind="peft", label="tuned",
                            metadata={})
    for task_id, const, culture, pids, analyses in TASKS:
        titles = {p: p.title() + " principle" for p in pids if p}
        store.upsert_task(
            task_id=task_id, constitution_id=const, culture=culture, n_prompts=6,
            metadata={"principles": titles, "analyses": analyses},
            prompts=[{"prompt_id": f"p{i}", "prompt": f"Prompt {i} for {task_id} <i>?</i>",
                      "principle_id": pids[i % len(pids)], "reference": None if i == 5 else f"Reference {i}",
                      "category": "cat",
                      "expect": ("comply" if i % 2 else "refuse") if task_id == "xstest" else "refuse"}
                     for i in range(6)])
    for scorer in dict.fromkeys(SCORER_OF.values()):
        store.upsert_scorer_metrics(scorer, f"h_{scorer}", [m for m in METRICS if SCORER_OF[m.name] == scorer], {})
    # an old generation config first (stored earlier): the report must ignore it
    for gen_hash in ("g_old", "g_new"):
        units = []
        for fi, fp in enumerate(["fp_base0000", "fp_tuned000"]):
            for ti, (task_id, *_rest) in enumerate(TASKS):
                unit = Unit(fp, task_id, gen_hash, PIDS)
                units.append((unit, fi, ti))
                store.insert_generations(run_id, unit, [(f"p{i}", _response(fp, task_id, i, gen_hash), 0.1)
                                                        for i in range(6)])
        for scorer in dict.fromkeys(SCORER_OF.values()):
            metrics = [m.name for m in METRICS if SCORER_OF[m.name] == scorer]
            for unit, fi, ti in units:
                pending, _ = store.pending_scores([unit], scorer, f"h_{scorer}", len(metrics))
                rows = []
                for p in pending:
                    i = int(p.prompt_id[1:])
                    for metric in metrics:
                        row = _row(str(p.generation_id), metric, p.response, i, fi, ti, unit.task_id)
                        if row is not None:
                            rows.append((p.generation_id, row))
                store.insert_scores(run_id, scorer, f"h_{scorer}", rows)
    store.finish_run(run_id, "finished")
    store.close()
    return url


@pytest.fixture()
def hostile() -> str:
    """The planted script-bearing response (a fixture: test modules cannot import conftest reliably)."""
    return HOSTILE


@pytest.fixture()
def store(tmp_path) -> str:
    return build_store(tmp_path / "results.sqlite")


@pytest.fixture(scope="module")
def module_store(tmp_path_factory) -> str:
    return build_store(tmp_path_factory.mktemp("store") / "results.sqlite")
