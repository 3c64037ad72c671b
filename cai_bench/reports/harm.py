"""Harm rates: the share of answers a harm classifier (a metric declaring role
`harm`: HarmBench's `harmful`, Llama Guard's `unsafe`) calls harmful, per
checkpoint, culture and task, beside the refusal rates.

A refusal rate alone rewards a model that never refuses but answers uselessly,
and misses one that "refuses" after giving the harmful content; the harm rate
is the other half of that picture. Only `ok` verdicts count; `n` says how many.
"""

from __future__ import annotations

import pandas as pd

ROLE = "harm"
HARM_NOTE = ("Share of answers a harm classifier (a metric with role `harm`: harmbench_cls.harmful, "
             "llama_guard.unsafe) calls harmful, per culture; lower is better. Read it beside the refusal rates: "
             "an answer can avoid refusing without being harmful, or refuse after giving harmful content.")
COLUMNS = ["label", "fingerprint", "culture", "task_id", "subset", "metric", "n", "harm_rate"]


def harm_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Per (checkpoint, culture, task, safe|unsafe|unlabelled, scorer.metric): the mean
    of the 0/1 harm verdicts that were scored."""
    if df.empty or "role" not in df.columns:
        return pd.DataFrame(columns=COLUMNS)
    part = df[(df["role"] == ROLE) & (df["status"] == "ok")].copy()
    if part.empty:
        return pd.DataFrame(columns=COLUMNS)
    part["subset"] = part["expect"].map({"comply": "safe", "refuse": "unsafe"}).fillna("unlabelled")
    part["metric_key"] = part["scorer_id"].astype(str) + "." + part["metric"].astype(str)
    out = (part.groupby(["label", "fingerprint", "culture", "task_id", "subset", "metric_key"], sort=True)
               .agg(n=("value", "size"), harm_rate=("value", "mean")).reset_index()
               .rename(columns={"metric_key": "metric"}))
    return out[COLUMNS]
