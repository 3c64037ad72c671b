"""What each scorer actually scored: ok / na / unscored / error counts over its
score rows, with the most common reason for the rows without a value.

A scorer that scores nothing (a judge whose verdicts never parse, similarity on a
task without references) must say so at the end of a run and in the report, not
only through a low coverage number.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

STATUSES = ("ok", "na", "unscored", "error")
LOW_SHARE = 0.5  # under this share of rows scored, a scorer is reported loudly


@dataclass
class Coverage:
    """One scorer's score rows in scope, by status."""

    scorer_id: str
    rows: int = 0
    ok: int = 0
    na: int = 0
    unscored: int = 0
    error: int = 0
    top_reason: str = ""  # most common reason among rows without a value
    top_reason_n: int = 0

    @property
    def share(self) -> float:
        return self.ok / self.rows if self.rows else 0.0

    @property
    def low(self) -> bool:
        """Scored under half of its rows."""
        return self.rows > 0 and self.share < LOW_SHARE

    def counts_text(self) -> str:
        return (f"{self.ok}/{self.rows} scored, {self.na} na, {self.unscored} unscored, {self.error} error")

    def reason_text(self) -> str:
        return f"{self.top_reason} ({self.top_reason_n}x)" if self.top_reason else ""

    def line(self) -> str:
        """`judge: 0/12 scored, 0 na, 12 unscored, 0 error; most common: ... (12x)`."""
        reason = self.reason_text()
        return f"{self.scorer_id}: {self.counts_text()}" + (f"; most common: {reason}" if reason else "")

    def as_json(self) -> dict[str, object]:
        return {"rows": self.rows, "ok": self.ok, "na": self.na, "unscored": self.unscored, "error": self.error,
                "top_reason": self.top_reason, "top_reason_n": self.top_reason_n}


def row_reason(status: str, error: str | None, detail_json: str | None = None) -> str:
    """Why a row has no value: its error text, else the `reason` in its detail (na rows)."""
    if status == "ok":
        return ""
    if error:
        return " ".join(str(error).split())
    if detail_json:
        try:
            detail = json.loads(detail_json)
        except ValueError:
            return ""
        if isinstance(detail, dict) and detail.get("reason"):
            return " ".join(str(detail["reason"]).split())
    return ""


def summarize(scorer_id: str, rows: Iterable[tuple[str, str]]) -> Coverage:
    """`rows`: (status, reason) per score row of one scorer."""
    cov = Coverage(scorer_id)
    reasons: Counter[str] = Counter()
    for status, reason in rows:
        cov.rows += 1
        if status in STATUSES:
            setattr(cov, status, getattr(cov, status) + 1)
        else:  # an unknown status still counts as not scored
            cov.error += 1
        if status != "ok" and reason:
            reasons[reason] += 1
    if reasons:
        # most common, ties broken by the text so the choice is stable
        cov.top_reason, cov.top_reason_n = min(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return cov


def summarize_frame(df) -> list[Coverage]:  # noqa: ANN001 - a results DataFrame
    """Per scorer, from a results frame with `scorer_id`, `status` and `reason` (or `error`) columns."""
    if df is None or len(df) == 0:
        return []
    reason_col = "reason" if "reason" in df.columns else "error"
    out = []
    for sid, part in df.groupby("scorer_id", sort=True):
        reasons = [("" if r is None or (isinstance(r, float) and r != r) else " ".join(str(r).split()))
                   for r in part[reason_col]]
        out.append(summarize(str(sid), zip(part["status"].astype(str), reasons)))
    return out
