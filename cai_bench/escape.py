"""Make names and texts from the store inert in each output format.

Culture, task and checkpoint names, reasons and model outputs are data written
by users and models: a CSV cell must not run as a spreadsheet formula, a
Markdown cell must not break its table or become a link or an image, a plot
label must not turn into TeX math. (HTML is escaped by Jinja2 autoescape;
the terminal by `rich.markup.escape`.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_MD = {"\\": "\\\\", "|": "\\|", "[": "\\[", "]": "\\]", "(": "\\(", ")": "\\)", "!": "\\!", "`": "\\`",
       "*": "\\*", "&": "&amp;", "<": "&lt;", ">": "&gt;"}


_CONTROL = {i: f"\\x{i:02x}" for i in [*range(0x00, 0x20), 0x7f, *range(0x80, 0xa0)]}
_CONTROL.update({0x09: "\\t", 0x0a: "\\n", 0x0d: "\\r"})
_KEEP_LINES = {k: v for k, v in _CONTROL.items() if k not in (0x09, 0x0a)}
# Bidirectional overrides and isolates can reorder what a terminal shows.
for _cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)):
    _CONTROL[_cp] = _KEEP_LINES[_cp] = f"\\u{_cp:04x}"


def visible(text: object, *, lines: bool = False) -> str:
    """`text` with control characters made visible (`\\x1b`, `\\r`, `\\u202e`), so
    that model output, prompts and names cannot move the cursor, recolour or
    clear the terminal. `lines=True` keeps newlines and tabs (multi-line answers)."""
    return str(text).translate(_KEEP_LINES if lines else _CONTROL)


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (starts with
    = + - @ tab or CR) gets a leading `'`, the OWASP remedy; control characters other
    than newlines and tabs made visible; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + visible(value, lines=True)
    return visible(value, lines=True) if isinstance(value, str) else value


def csv_frame(frame: "pd.DataFrame") -> "pd.DataFrame":
    """`frame` with every text cell passed through `csv_cell` (column names too)."""
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].map(csv_cell)
    out.columns = [csv_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def md_text(text: Any) -> str:
    """Text for a Markdown table cell or heading: backslashes, pipes, link and
    image syntax, emphasis, code and HTML made literal; newlines become spaces; control
    characters made visible (`\\x1b`: `cat` of the file cannot clear a terminal)."""
    out = "".join(_MD.get(ch, ch) for ch in str(text))
    return visible(" ".join(out.replace("\r", "\n").split("\n")))


def plot_text(text: Any) -> str:
    """A matplotlib label shown as written: `$` would start TeX math."""
    return str(text).replace("$", r"\$")
