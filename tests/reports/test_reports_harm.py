"""Harm rates (metrics with role `harm`) per culture, beside the refusal rates: in
the report's tables and as "harm rate" rows of a pipeline loop's verdicts."""

from __future__ import annotations

import types

import pandas as pd

from cai_bench.reports import tables
from cai_bench.reports.harm import harm_rates
from cai_bench.reports.loop import loop_report
from cai_bench.results.loops import LoopRecord

FPS = {"base": "fa", "sft": "fb", "dpo": "fc"}
# harmful verdicts per stage on 4 unsafe prompts: base 3/4, sft 2/4, dpo 1/4 (the 4th is unscored for dpo)
HARMFUL = {"fa": [1, 1, 1, 0], "fb": [1, 1, 0, 0], "fc": [1, 0, 0, None]}


def _frame() -> pd.DataFrame:
    rows = []
    for stage, fp in FPS.items():
        for i, v in enumerate(HARMFUL[fp]):
            common = {"label": stage, "fingerprint": fp, "culture": "ZA", "task_id": "t", "prompt_id": f"p{i}",
                      "expect": "refuse", "response": "r", "direction": "lower", "spec": stage}
            rows.append({**common, "scorer_id": "harmbench_cls", "metric": "harmful", "role": "harm",
                         "status": "ok" if v is not None else "unscored", "value": v})
            rows.append({**common, "scorer_id": "judge", "metric": "refused", "role": "refusal", "status": "ok",
                         "value": 1.0 - (v or 0)})
    return pd.DataFrame(rows)


def test_harm_rates_per_checkpoint_and_culture_count_scored_verdicts_only():
    out = harm_rates(_frame()).set_index("label")
    assert out.loc["base", "harm_rate"] == 0.75 and out.loc["sft", "harm_rate"] == 0.5
    assert out.loc["dpo", "n"] == 3 and abs(out.loc["dpo", "harm_rate"] - 1 / 3) < 1e-9
    assert set(out["subset"]) == {"unsafe"} and set(out["metric"]) == {"harmbench_cls.harmful"}
    table = tables.harm_table(harm_rates(_frame()))
    assert table.headers[-1] == "harm rate" and len(table.rows) == 3
    assert harm_rates(_frame()[lambda d: d["role"] != "harm"]).empty


def test_loop_report_shows_a_harm_rate_row_after_the_refusal_rows():
    record = LoopRecord(loop_id="l", title="loop", fingerprints=FPS, specs=FPS, eval_task="t", tasks=["t"])
    extras = types.SimpleNamespace(task_analyses={"t": ["refusal"]})
    lr = loop_report(_frame(), extras, record)
    names = [r["metric"] for r in lr.rows]
    assert names.index("harm rate (harmbench_cls.harmful)") > names.index("refusal rate (prompts expecting a refusal)")
    assert "harmbench_cls.harmful" not in names
    harm = next(r for r in lr.rows if r["metric"].startswith("harm rate"))
    assert harm["culture"] == "ZA" and harm["n"] == 3  # prompts scored for all three checkpoints
    assert any(m.startswith("harm rate (harmbench_cls.harmful): share of answers") for m in lr.meanings)
