"""Make names and texts from the store inert in each output format.

Culture, task and checkpoint names, reasons and model outputs are data written
by users and models: a CSV cell must not run as a spreadsheet formula, a
Markdown cell must not break its table or become a link or an image, a plot
label must not turn into TeX math. (HTML is escaped by Jinja2 autoescape;
the terminal by `rich.markup.escape`.)
"""

from __future__ import annotations

from typing import Any

import pandas as pd

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_MD = {"\\": "\\\\", "|": "\\|", "[": "\\[", "]": "\\]", "(": "\\(", ")": "\\)", "!": "\\!", "`": "\\`",
       "*": "\\*", "&": "&amp;", "<": "&lt;", ">": "&gt;"}


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (starts with
    = + - @ tab or CR) gets a leading `'`, the OWASP remedy; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text cell passed through `csv_cell` (column names too)."""
    out = frame.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].map(csv_cell)
    out.columns = [csv_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def md_text(text: Any) -> str:
    """Text for a Markdown table cell or heading: backslashes, pipes, link and
    image syntax, emphasis, code and HTML made literal; newlines become spaces."""
    out = "".join(_MD.get(ch, ch) for ch in str(text))
    return " ".join(out.replace("\r", "\n").split("\n"))


def plot_text(text: Any) -> str:
    """A matplotlib label shown as written: `$` would start TeX math."""
    return str(text).replace("$", r"\$")
