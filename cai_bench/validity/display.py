"""A Rich table of validations for the terminal (`scorers validate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rich.table import Table
from rich.text import Text

from cai_bench.validity.stats import PRETTY, VERDICT_TEXT

if TYPE_CHECKING:
    from cai_bench.validity.run import Validation


def validation_table(items: Sequence["Validation"]) -> Table:
    table = Table(title="Scorer validity (95% bootstrap CI)")
    for col in ("scorer.metric", "suite", "valid", "figure", "other figures", "verdict"):
        table.add_column(col, overflow="fold")
    for v in items:
        a = v.agreement
        others = ", ".join(f"{PRETTY.get(k, k)} {f.text()}" for k, f in a.figures.items() if k != a.primary)
        style = {"agrees": "green", "chance": "bold yellow", "inverted": "bold red"}.get(a.verdict, "")
        table.add_row(Text(f"{v.scorer_id}.{v.metric}"), Text(v.suite), Text(a.counts.text()),
                      Text(f"{PRETTY.get(a.primary, a.primary)} {a.primary_figure.text()}"), Text(others or "–"),
                      Text(VERDICT_TEXT[a.verdict], style=style))
    return table
