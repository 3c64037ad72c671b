"""A Rich table of validations for the terminal (`scorers validate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rich.text import Text

from cai_bench.console import Col, fitted_table, visible
from cai_bench.validity.stats import PRETTY, VERDICT_TEXT

if TYPE_CHECKING:
    from rich.table import Table

    from cai_bench.validity.run import Validation


def validation_table(items: Sequence["Validation"]) -> "Table":
    """One row per validation; print it with `console.print_table` (scorer.metric and suite kept whole)."""
    cols = [Col("scorer.metric", keep=True), Col("suite", keep=True), Col("valid"), Col("figure"),
            Col("other figures", drop=1), Col("verdict")]
    rows = []
    for v in items:
        a = v.agreement
        others = ", ".join(f"{PRETTY.get(k, k)} {f.text()}" for k, f in a.figures.items() if k != a.primary)
        style = {"agrees": "green", "chance": "bold yellow", "inverted": "bold red"}.get(a.verdict, "")
        rows.append([f"{v.scorer_id}.{v.metric}", v.suite, a.counts.text(),
                     f"{PRETTY.get(a.primary, a.primary)} {a.primary_figure.text()}", others or "–",
                     Text(visible(VERDICT_TEXT[a.verdict]), style=style)])
    return fitted_table(cols, rows, title="Scorer validity (95% bootstrap CI)")
