"""The experiment section as display tables (`tables.Table`), once, so that
experiment.md, index.html and the terminal show the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cai_bench.reports.experiment import KINDS, SEED_AXIS, ExperimentReport, value_text
from cai_bench.reports.loop import ALPHA
from cai_bench.reports.tables import Table, _num, cell, fmt
from cai_bench.results.loops import ROLES

ROLE_HEADERS = {"base": "base", "sft": "SFT", "dpo": "DPO"}
MARK = {"improved": "▲", "regressed": "▼"}


@dataclass
class Part:
    """One heading of the section: a note and a table (or only a note)."""

    heading: str
    note: str
    table: Table | None
    level: int = 3  # Markdown heading level inside the experiment's own section


def _ci(x: dict[str, Any]) -> tuple[str, float | None]:
    return (f"{fmt(x['mean'])} [{fmt(x['lo'])}, {fmt(x['hi'])}]", _num(x["mean"]))


def _delta(r: dict[str, Any]) -> tuple[str, float | None]:
    return (f"{fmt(r['delta'])} [{fmt(r['lo'])}, {fmt(r['hi'])}]", _num(r["delta"]))


def method_note(rep: ExperimentReport) -> str:
    seeds = (" Effects are estimated over training seeds and prompts together (a bootstrap resampling both); "
             "\"seeds\" says in how many seeds the verdict holds (each seed's own paired test, corrected within "
             "the same family)." if rep.seed_axis else "")
    return (f"Paired bootstrap on the same held-out prompts ({rep.n_boot} resamples, seed {rep.record.seed}); "
            f"p-values corrected by {rep.method_name} within each family (one table = one kind of comparison and "
            f"one metric); verdicts from the corrected p < {ALPHA}. Deltas are a - b, mean [95% CI]." + seeds)


def comparison_table(rows: list[dict[str, Any]], method: str, seeds: bool, principle: bool = False) -> Table:
    headers = ["a", "b", "task", *(["principle"] if principle else []), "n", "a - b [95% CI]", "p",
               f"p ({method})", "verdict", *(["seeds"] if seeds else [])]
    out = []
    for r in rows:
        out.append([cell(r["a"]), cell(r["b"]), cell(r["task"]), *([cell(r["principle"])] if principle else []),
                    cell(r["n"]), _delta(r), cell(r["p"]), cell(r["p_corrected"]), cell(r["verdict"]),
                    *([cell(r.get("holds_in_seeds", ""))] if seeds else [])])
    return Table(headers, out)


def _families(rows: list[dict[str, Any]], kind: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] == kind:
            out.setdefault(r["metric"], []).append(r)
    return dict(sorted(out.items()))


def transfer_table(rep: ExperimentReport, metric: str) -> Table:
    t = rep.transfer
    rows = []
    for i, name in enumerate(t["rows"]):
        row = [cell(name)]
        for c in t["cells"][metric][i]:
            if c is None:
                row.append(cell(None))
                continue
            seeds = f", seeds {c['holds_in_seeds']}" if c.get("holds_in_seeds") else ""
            row.append((f"{MARK.get(c['verdict'], '')}{fmt(c['delta'])} [{fmt(c['lo'])}, {fmt(c['hi'])}] "
                        f"p={fmt(c['p_corrected'])}{seeds}" + (" (own)" if c["own"] else ""), _num(c["delta"])))
        rows.append(row)
    return Table(["trained on \\ evaluated on", *t["cols"]], rows)


def parts(rep: ExperimentReport) -> list[Part]:
    """Every table of one experiment, in reading order."""
    r = rep.record
    seeds = rep.seed_axis
    out: list[Part] = []
    axes = "; ".join(f"{a}: {', '.join(value_text(v) for v in vals)}" for a, vals in r.axes.items())
    status = {}
    for v in r.variants:
        status[v.status] = status.get(v.status, 0) + 1
    out.append(Part("Design", f"Axes: {axes}. Variants: {len(r.variants)} ("
                    + ", ".join(f"{n} {s}" for s, n in sorted(status.items())) + "). " + method_note(rep), None))
    out.append(Part("Variants", "Each variant's pipeline, and why a variant has no verdict (the quality gate, "
                    "an error).", Table(["variant", "status", "loop", "reason"],
                                        [[cell(v.name), cell(v.status), cell((v.loop_id or "")[:16]),
                                          cell(_reason(rep, v.name))] for v in r.variants])))
    means = Table(["variant", "task", "metric", "n", *(["seeds"] if seeds else []), *ROLE_HEADERS.values()],
                  [[cell(m["condition"]), cell(m["task"]), cell(m["metric"]), cell(m["n"]),
                    *([cell(m["seeds"])] if seeds else []), *(_ci(m[x]) for x in ROLES)] for m in rep.means])
    out.append(Part("Base, SFT and DPO per variant", "Mean [95% bootstrap CI]"
                    + (" over seeds and prompts" if seeds else "") + " on each task the variant's eval ran.", means))
    for metric, rows in _families(rep.comparisons, "variants").items():
        out.append(Part(f"Comparisons: {metric}", KINDS["variants"] + f"; one family, {rep.method_name}.",
                        comparison_table(rows, rep.method_name, seeds)))
    out.append(Part("Behaviour beside wording", "Per comparison: the verdicts of the wording metrics beside "
                    "refusal on prompts expecting a refusal and over-refusal on prompts expecting an answer; "
                    "\"wording only\" means the answers changed in wording but not in what they do.",
                    behaviour_table(rep)))
    for metric in rep.transfer.get("cells", {}):
        out.append(Part(f"Transfer matrix: {metric}", "Cell: DPO - base of the trained-on variant on the "
                        "evaluated-on culture's held-out prompts, [95% CI], corrected p (▲ improved, ▼ regressed; "
                        f"{rep.method_name} over the cells).", transfer_table(rep, metric)))
    for metric, rows in _families(rep.comparisons, "principles").items():
        out.append(Part(f"Per-principle movement: {metric}", KINDS["principles"] + ".",
                        comparison_table(rows, rep.method_name, seeds, principle=True)))
    for metric, rows in _families(rep.comparisons, "ablation").items():
        out.append(Part(f"Principle ablations: {metric}", KINDS["ablation"] + ".",
                        comparison_table(rows, rep.method_name, seeds, principle=True)))
    if rep.notes:
        out.append(Part("Not compared", "; ".join(rep.notes) + ".", None))
    if r.stage_counts:
        out.append(Part("Stages computed and shared", "computed: distinct stage runs among the variants that finished "
                        "the stage; shared: variants that reused another's; run now: computed by the last invocation.",
                        Table(["stage", "computed", "shared", "run now"],
                              [[cell(s), cell(c.get("computed", 0)), cell(c.get("shared", 0)), cell(c.get("run_now", ""))]
                               for s, c in r.stage_counts.items()])))
    return out


def _reason(rep: ExperimentReport, name: str) -> str:
    for s in rep.stopped:
        if s["variant"] == name:
            return str(s["reason"]) + gate_text(s.get("gate"))
    return ""


def gate_text(gate: dict[str, Any] | None) -> str:
    """The quality gate's figures in words (`; gate: sft kept 3/40, prefs kept 2/40`), or nothing."""
    parts = [f"{k} kept {v['kept']}/{v['total']}" for k, v in sorted((gate or {}).items())
             if isinstance(v, dict) and "kept" in v and "total" in v]
    return f"; gate: {', '.join(parts)}" if parts else ""


def behaviour_table(rep: ExperimentReport) -> Table:
    from cai_bench.reports.experiment import BEHAVIOUR

    def verdicts(d: dict[str, Any]) -> str:
        return "; ".join(f"{m} {fmt(r['delta'])} {r['verdict']}" for m, r in d.items()) or "–"

    rows = []
    for b in rep.behaviour:
        beh = [b["behaviour"].get(m) for m in BEHAVIOUR]
        rows.append([cell(b["a"]), cell(b["b"]), cell(b["task"]), cell(verdicts(b["wording"])),
                     *(cell(f"{fmt(x['delta'])} {x['verdict']}" if x else "n/a") for x in beh), cell(b["reading"])])
    return Table(["a", "b", "task", "wording metrics (a - b, verdict)", "refusal (expects refusal)",
                  "over-refusal (expects answer)", "what moved"], rows)


def verdict_rows(rep: ExperimentReport) -> list[dict[str, Any]]:
    """The rows the terminal prints: the variants family, every metric."""
    return [r for r in rep.comparisons if r["kind"] == "variants"]


def transfer_lines(rep: ExperimentReport) -> list[str]:
    """The transfer matrix in words, one line per (metric, trained-on) row."""
    t = rep.transfer
    out = []
    for metric, grid in t.get("cells", {}).items():
        for name, row in zip(t["rows"], grid):
            cells = [f"on {col}{' (own)' if c['own'] else ''} {fmt(c['delta'])} {c['verdict']}"
                     for col, c in zip(t["cols"], row) if c is not None]
            out.append(f"{metric}, trained on {name}: " + "; ".join(cells))
    return out


def seed_text(rep: ExperimentReport) -> str:
    return f" over seeds {', '.join(map(str, rep.record.axes.get(SEED_AXIS, [])))}" if rep.seed_axis else ""
