"""Display tables shared by the HTML, Markdown and terminal writers: the same
columns and number formats everywhere."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass
class Table:
    """Headers plus rows of (display text, sort key) cells; the sort key is a
    number for numeric cells, None otherwise."""

    headers: list[str]
    rows: list[list[tuple[str, float | None]]]


def fmt(v: object, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _num(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def cell(v: object, digits: int = 3) -> tuple[str, float | None]:
    if isinstance(v, str):
        return (v, None)
    return (fmt(v, digits), _num(v))


def rank_cell(v: object) -> tuple[str, float | None]:
    """A rank as an integer; none (no composite) as "–"."""
    return cell(int(v) if _num(v) is not None else None)  # type: ignore[call-overload]


def metric_keys(board: pd.DataFrame) -> list[str]:
    return [c for c in board.columns if "." in c and not c.endswith((".lo", ".hi", ".n"))]


def _g(v: float) -> str:
    return f"{v:.3g}"


def scale_text(scale: dict | None) -> str:
    """A metric's own scale: `-1..1, higher better`; a range taken from the data says so."""
    if not scale:
        return ""
    rng = f"{_g(scale['lo'])}..{_g(scale['hi'])}" + ("" if scale["declared"] else " in the data")
    return f"{rng}, {'lower' if scale['direction'] == 'lower' else 'higher'} better"


def mapping_text(key: str, scale: dict) -> str:
    """How `key` enters the composite: `similarity.cosine (x+1)/2`."""
    lo, hi = scale["lo"], scale["hi"]
    span = hi - lo
    if span <= 0:
        return f"{key} 0.5 (one value in the data)"
    num = "x" if lo == 0 else f"(x{-lo:+.3g})"
    expr = num if span == 1 else f"{num}/{_g(span)}"  # every form binds tighter than a leading "1-"
    if scale["direction"] == "lower":
        expr = f"1-{expr}"
    where = "" if scale["declared"] else f", range {_g(lo)}..{_g(hi)} from the data"
    return f"{key} {expr}{where}"


def composite_note(scales: dict[str, dict]) -> str:
    """The normalisation stated next to the composite."""
    used = [mapping_text(k, sc) for k, sc in sorted(scales.items()) if sc["in_composite"]]
    left = [k for k, sc in sorted(scales.items()) if not sc["in_composite"]]
    partly = [f"{k} on task {', '.join(sc['out_on'])}" for k, sc in sorted(scales.items()) if sc.get("out_on")]
    text = ("composite = mean of each metric mapped to 0 (worst) .. 1 (best): " + "; ".join(used)
            if used else "composite: no metric to combine")
    if left:
        text += f" ({', '.join(left)} shown, not in the composite)"
    if partly:
        text += f" (not in the composite, as its task declares: {'; '.join(partly)})"
    from cai_bench.reports.statistics import RANK_TEST

    return text + ". Ranks: " + RANK_TEST + "."


def leaderboard_table(board: pd.DataFrame, group: str, flagged: frozenset[str] = frozenset(),
                      scales: dict[str, dict] | None = None, unvalidated: frozenset[str] = frozenset()) -> Table:
    """Each metric on its own scale (mean and 95% CI, the scale in the header) first,
    then the composite, which is a mapped 0..1 number (see `composite_note`).
    `flagged`: metric keys whose scorer validated at chance level; their header gets a ⚠.
    `unvalidated`: metric keys not validated for this group's culture; their header gets a †."""
    part = board[board["group"] == group]
    keys = [k for k in metric_keys(board) if part[k].notna().any()]
    scales = scales or {}
    heads = [k + (" ⚠" if k in flagged else "") + (" †" if k in unvalidated and k not in flagged else "")
             + (f" ({scale_text(scales[k])})" if k in scales else "") for k in keys]
    headers = ["rank", "checkpoint", "n", "coverage", *heads, "composite (0..1)"]
    rows = []
    for r in part.to_dict("records"):
        row = [rank_cell(r["rank"]), cell(r["label"]), cell(int(r["n"])), cell(float(r["coverage"]), 2)]
        for k in keys:
            mean = r[k]
            text = "–" if _num(mean) is None else f"{fmt(mean)} [{fmt(r[k + '.lo'])}, {fmt(r[k + '.hi'])}]"
            row.append((text, _num(mean)))
        row.append(cell(r["composite"]))
        rows.append(row)
    return Table(headers, rows)


def _p_cell(p: float) -> tuple[str, float | None]:
    """Significant digits, not decimals: a p of 0.0002 must not print as 0.000."""
    v = _num(p)
    return ("–", None) if v is None else (f"{v:.2g}", v)


def deltas_table(deltas: pd.DataFrame, group: str) -> Table:
    part = deltas[deltas["group"] == group]
    headers = ["checkpoint", "metric", "pairs", "delta", "95% CI", "p-value"]
    rows = [[cell(r["label"]), cell(r["metric"]), cell(int(r["n_pairs"])), cell(r["delta"]),
             (f"[{fmt(r['lo'])}, {fmt(r['hi'])}]", _num(r["lo"])), _p_cell(r["p_value"])]
            for r in part.to_dict("records")]
    return Table(headers, rows)


def matrix_table(matrix: pd.DataFrame) -> Table:
    headers = ["checkpoint", *[str(c) for c in matrix.columns]]
    rows = [[cell(str(idx)), *[cell(v) for v in vals]] for idx, vals in zip(matrix.index, matrix.to_numpy())]
    return Table(headers, rows)


def principles_table(principles: pd.DataFrame, culture: str) -> Table:
    part = principles[principles["culture"] == culture]
    labels = sorted(part["label"].unique())
    wide = part.pivot_table(index=["task_id", "principle_id", "title"], columns="label", values="score",
                            aggfunc="first")
    headers = ["task", "principle", "title", *labels]
    rows = []
    for (task, pid, title), vals in zip(wide.index, wide.reindex(columns=labels).to_numpy()):
        rows.append([cell(task), cell(pid), cell(title), *[cell(v) for v in vals]])
    return Table(headers, rows)


def weakest_table(weakest: pd.DataFrame, culture: str) -> Table:
    part = weakest[weakest["culture"] == culture]
    headers = ["checkpoint", "principle", "title", "n", "score"]
    rows = [[cell(r["label"]), cell(r["principle_id"]), cell(r["title"]), cell(int(r["n"])), cell(r["score"])]
            for r in part.to_dict("records")]
    return Table(headers, rows)


def refusal_table(refusal: pd.DataFrame) -> Table:
    headers = ["checkpoint", "task", "subset", "n", "refusal rate", "meaning", "by scorer verdict", "by string rule"]
    rows = [[cell(r["label"]), cell(r["task_id"]), cell(r["subset"]), cell(int(r["n"])), cell(r["refusal_rate"]),
             cell(r["meaning"]), cell(int(r["by_verdict"])), cell(int(r["by_rule"]))]
            for r in refusal.to_dict("records")]
    return Table(headers, rows)


def harm_table(harm: pd.DataFrame) -> Table:
    headers = ["checkpoint", "culture", "task", "subset", "classifier", "n", "harm rate"]
    rows = [[cell(r["label"]), cell(r["culture"]), cell(r["task_id"]), cell(r["subset"]), cell(r["metric"]),
             cell(int(r["n"])), cell(r["harm_rate"])] for r in harm.to_dict("records")]
    return Table(headers, rows)


def coverage_table(coverage: list) -> Table:
    """Per scorer: score rows by status and the most common reason a row has no value."""
    headers = ["scorer", "rows", "scored", "share", "na", "unscored", "error", "most common reason"]
    rows = [[cell(c.scorer_id), cell(c.rows), cell(c.ok), cell(c.share, 2), cell(c.na), cell(c.unscored),
             cell(c.error), cell(c.reason_text())] for c in coverage]
    return Table(headers, rows)


def unavailable_table(unavailable: list[dict]) -> Table:
    return Table(["scorer", "reason", "run"],
                 [[cell(u["scorer_id"]), cell(u["reason"]), cell(u["run_id"])] for u in unavailable])


def _settings(settings: object) -> str:
    """A config's settings in one line: `key=value` pairs, nested ones flattened."""
    if not isinstance(settings, dict):
        return str(settings)
    parts = []
    for k, v in sorted(settings.items()):
        if isinstance(v, dict):
            parts += [f"{k}.{kk}={vv}" for kk, vv in sorted(v.items()) if vv is not None]
        elif v is not None:
            parts.append(f"{k}={v}")
    return ", ".join(parts)


def configs_table(configs: list[dict]) -> Table:
    """The one generation config per task and one scorer config per scorer compared."""
    return Table(["kind", "task / scorer", "config", "covers", "settings"],
                 [[cell(c["kind"]), cell(c["name"]), cell(c["hash"]), cell(f"{c['covered']} of {c['of']} {c['unit']}"),
                   cell(_settings({**c["settings"], "engine": c["engine"]} if c.get("engine") else c["settings"]))]
                  for c in configs])


def checkpoints_table(checkpoints: list[dict]) -> Table:
    """Who answered for each checkpoint: the engine of local weights (hf, vllm) or its server."""
    return Table(["checkpoint", "kind", "engine", "fingerprint"],
                 [[cell(c["label"]), cell(c["kind"]), cell(c["engine"]), cell(c["fingerprint"][:12])]
                  for c in checkpoints])


def left_out_table(left_out: list[dict]) -> Table:
    return Table(["checkpoint", "task", "what", "stored under", "why"],
                 [[cell(x["checkpoint"]), cell(x["task_id"]), cell(x["what"]), cell(x["hash"]), cell(x["reason"])]
                  for x in left_out])


def principle_coverage_table(coverage: list[dict]) -> Table:
    """Prompts in the report of each task's prompts, per principle."""
    return Table(["task", "principle", "prompts"],
                 [[cell(c["task_id"]), cell(c["principle_id"]), cell(f"{c['n']} of {c['of']}")] for c in coverage])


def _md_escape(text: str) -> str:
    from cai_bench.escape import md_text

    return md_text(text)


def to_markdown(table: Table) -> str:
    if not table.rows:
        return "_none_\n"
    lines = ["| " + " | ".join(_md_escape(h) for h in table.headers) + " |",
             "|" + "|".join("---" for _ in table.headers) + "|"]
    lines += ["| " + " | ".join(_md_escape(text) for text, _ in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def loop_table(rows: list[dict]) -> Table:
    """A loop's verdict rows (reports.loop): means [CI] per checkpoint, paired deltas (p), verdict."""
    from cai_bench.reports.loop import PAIRS
    from cai_bench.results.loops import ROLES

    def ci(x: dict) -> tuple[str, float | None]:
        return (f"{fmt(x['mean'])} [{fmt(x['lo'])}, {fmt(x['hi'])}]", _num(x["mean"]))

    def delta(x: dict) -> tuple[str, float | None]:
        return (f"{fmt(x['delta'])} ({fmt(x['p'])})", _num(x["delta"]))

    return Table(["culture", "task", "metric", "n", "base", "SFT", "DPO", "SFT-base (p)", "DPO-SFT (p)",
                  "DPO-base (p)", "verdict"],
                 [[cell(r["culture"]), cell(r["task"]), cell(r["metric"]), cell(r["n"]),
                   *(ci(r[x]) for x in ROLES), *(delta(r[f"{a}_vs_{b}"]) for a, b in PAIRS), cell(r["verdict"])]
                  for r in rows])
