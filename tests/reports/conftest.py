"""A small results store written straight through the schema tables: two
checkpoints, two cultures plus xstest, several metrics with na/unscored/error
rows, an older generation config that must be ignored, and a hostile response."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import insert

from cai_bench.results import schema as S

HOSTILE = "<script>document.title='PWNED'</script><script>alert(1)</script> & <b>bold</b>"
METRICS = [
    # scorer, metric, direction, lo, hi
    ("similarity", "cosine", "higher", -1.0, 1.0),
    ("harmlessness", "harmless", "higher", 0.0, 1.0),
    ("judge", "adherence", "higher", 1.0, 10.0),
    ("judge", "refused", "higher", 0.0, 1.0),
    ("moderation", "max_score", "lower", None, None),
]


def build_store(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = S.make_engine(url)
    ts = "2026-11-23T10:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(insert(S.runs), [{
            "run_id": "run1", "started_at": ts, "finished_at": ts, "status": "finished", "seed": 0,
            "config_json": "{}",
            "scorers_json": json.dumps([
                {"id": "similarity", "config_hash": "h_sim", "available": True, "reason": ""},
                {"id": "helpfulness", "config_hash": "h_help", "available": False,
                 "reason": "berkeley-nest/Starling-RM-7B-alpha is not available offline"},
            ]),
        }])
        conn.execute(insert(S.checkpoints), [
            {"fingerprint": "fp_base0000", "spec": "bundled:smollm2-135m-instruct", "kind": "hf", "label": "base"},
            {"fingerprint": "fp_tuned000", "spec": "/ckpt/tuned", "kind": "peft", "label": "tuned"},
        ])
        tasks = [("cai_south_africa", "south_africa", "ZA", ["ubuntu", "dignity"]),
                 ("cai_romania", "romania", "RO", ["family", "faith"]),
                 ("xstest", "anthropic", "xstest", [None])]
        for task_id, const, culture, pids in tasks:
            titles = {p: p.title() + " principle" for p in pids if p}
            conn.execute(insert(S.tasks), [{"task_id": task_id, "constitution_id": const, "culture": culture,
                                            "n_prompts": 6, "metadata_json": json.dumps({"principles": titles})}])
            conn.execute(insert(S.prompts), [
                {"task_id": task_id, "prompt_id": f"p{i}", "prompt": f"Prompt {i} for {task_id} <i>?</i>",
                 "principle_id": pids[i % len(pids)], "reference": None if i == 5 else f"Reference {i}",
                 "category": "cat", "expect": ("comply" if i % 2 else "refuse") if task_id == "xstest" else "refuse"}
                for i in range(6)])
        gid = 0
        gens, scores = [], []
        for fi, fp in enumerate(["fp_base0000", "fp_tuned000"]):
            for ti, (task_id, _c, _cu, _p) in enumerate(tasks):
                for i in range(6):
                    # an old generation config first: must be ignored by the report
                    for gen_hash, created in (("g_old", "2026-11-20T00:00:00"), ("g_new", "2026-11-23T10:00:00")):
                        gid += 1
                        response = f"Answer {i} from {fp}"
                        if gen_hash == "g_old":
                            response = "OLD RESPONSE"
                        elif fp == "fp_tuned000" and task_id == "cai_south_africa" and i == 0:
                            response = HOSTILE
                        elif task_id == "xstest" and i % 3 == 0:
                            response = "I'm sorry, I can't help with that."
                        gens.append({"generation_id": gid, "fingerprint": fp, "task_id": task_id, "prompt_id": f"p{i}",
                                     "gen_hash": gen_hash, "response": response, "seconds": 0.1, "run_id": "run1",
                                     "created_at": created})
                        bad = response == HOSTILE
                        base = 0.2 + 0.1 * i + 0.2 * fi - 0.1 * ti
                        for scorer, metric, _d, _lo, _hi in METRICS:
                            row = {"generation_id": gid, "scorer_id": scorer, "scorer_hash": f"h_{scorer}",
                                   "metric": metric, "value": None, "status": "ok", "error": None,
                                   "run_id": "run1", "created_at": created}
                            if scorer == "similarity" and i == 5:
                                row["status"] = "na"
                            elif scorer == "judge" and metric == "adherence" and i == 4 and fi == 0:
                                row["status"] = "unscored"
                                row["error"] = "unparseable verdict"
                            elif scorer == "moderation" and i == 3:
                                row["status"] = "error"
                                row["error"] = "HTTP 500 after retries"
                            elif scorer == "judge" and metric == "refused":
                                if task_id == "xstest" and i >= 4:
                                    continue  # judge verdict missing: the string rule decides
                                row["value"] = 1.0 if response.startswith("I'm sorry") else 0.0
                            elif scorer == "judge":
                                row["value"] = 1.0 if bad else 1 + 8 * min(base, 1.0)
                            elif scorer == "moderation":
                                row["value"] = 0.99 if bad else max(0.0, 0.5 - base / 2)
                            else:
                                row["value"] = 0.0 if bad else min(base, 1.0)
                            scores.append(row)
        conn.execute(insert(S.generations), gens)
        conn.execute(insert(S.scores), scores)
        conn.execute(insert(S.scorer_metrics), [
            {"scorer_id": s, "scorer_hash": f"h_{s}", "metric": m, "direction": d, "lo": lo, "hi": hi}
            for s, m, d, lo, hi in METRICS])
    engine.dispose()
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
