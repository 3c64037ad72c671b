"""Judge panels: one scorer entry that asks several judges and stores their verdict.

A scorer entry with `panel:` (a list of member configs) becomes a `PanelScorer`
under the entry's id (the head): `{id: judge, panel: [{backend: ollama}, {backend:
openai, model: gpt-4o-mini}, {id: strongreject, backend: ollama}]}`. A member is a
scorer config mapping; its `id` defaults to the head's, and a member of the head's
id inherits the entry's other settings. The panel declares the head's metrics; a
member counts towards each of them that it declares too (same name, direction and
range; a mismatch is a config error, never a silent mix of scales).

The verdict per row (`aggregate`), over the members that produce the metric:
- valid verdicts (status ok) are needed from a strict majority of those members;
  with fewer the row is *unscored* with the reason (each short member's own), or
  *error* when a member's request failed (a re-run retries, as for one judge);
  a member that fails to parse still counts in the panel's size;
- yes/no metrics (`MetricSpec.is_binary`): the strict majority of the valid
  verdicts; a tie is *unscored*, never decided by the members' order;
- scores: the mean of the valid verdicts.
Every member's verdict is kept in the row's detail (`detail["panel"]`), which the
report reads for the panel's agreement (`reports.agreement`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cai_bench.errors import UserError
from cai_bench.harness.scorers.base import (
    SECRET_FIELDS,
    MetricSpec,
    Scorer,
    ScorerConfig,
    ScoreInput,
    ScoreRow,
)

PANEL_KEY = "panel"
OWN_KEYS = frozenset({PANEL_KEY, "allow_self_grading"})  # the panel's own settings, never a member's


class PanelConfig(ScorerConfig):
    """The panel's members as given (validated by each member's own Config when built)."""

    panel: tuple[dict[str, Any], ...]

    def public_dict(self) -> dict[str, Any]:
        out = super().public_dict()
        out[PANEL_KEY] = [{k: v for k, v in m.items() if k not in SECRET_FIELDS} for m in self.panel]
        return out

    def identity_dict(self) -> dict[str, Any]:
        """The members' identities are in `PanelScorer.resolved`; here only the panel's own flags."""
        out = super().identity_dict()
        out.pop(PANEL_KEY, None)
        return out


@dataclass(frozen=True)
class MemberVerdict:
    """One member's row for one metric, as the panel saw it."""

    member: str
    status: str
    value: float | None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"member": self.member, "status": self.status, "value": self.value}
        if self.reason:
            out["reason"] = self.reason[:300]
        return out


def member_settings(head_id: str, settings: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(scorer id, settings) of each member: the id defaults to the head's, and a member of
    the head's id inherits the entry's settings besides `panel`."""
    members = settings.get(PANEL_KEY)
    if not isinstance(members, (list, tuple)) or len(members) < 2:
        raise UserError(f"scorer {head_id!r}: panel: give a list of at least two member configs")
    shared = {k: v for k, v in settings.items() if k not in OWN_KEYS}
    out = []
    for i, m in enumerate(members):
        if isinstance(m, str):
            m = {"id": m}
        if not isinstance(m, dict):
            raise UserError(f"scorer {head_id!r}: panel[{i}]: a member is a mapping of settings (with an optional "
                            f"id), not {type(m).__name__}")
        if PANEL_KEY in m:
            raise UserError(f"scorer {head_id!r}: panel[{i}]: a member cannot be a panel itself")
        sid = str(m.get("id") or head_id)
        own = {k: v for k, v in m.items() if k != "id"}
        out.append((sid, {**shared, **own} if sid == head_id else own))
    return out


def _label(i: int, s: Scorer) -> str:
    """`2:judge(openai:gpt-4o-mini)`: the position makes two members of one model distinct."""
    models = ", ".join(spec for spec, _ in s.judge_models())
    return f"{i + 1}:{s.id}" + (f"({models})" if models else "")


def aggregate(key: str, spec: MetricSpec, verdicts: list[MemberVerdict]) -> ScoreRow:
    """The panel's row for one metric of one response from its members' verdicts (module docstring)."""
    n = len(verdicts)
    detail: dict[str, Any] = {"panel": {"aggregate": "majority" if spec.is_binary else "mean",
                                        "members": [v.as_json() for v in verdicts]}}
    valid = [v for v in verdicts if v.status == "ok" and v.value is not None]
    if not n:
        return ScoreRow.na(key, spec.name, "no member of the panel produces this metric")
    if all(v.status == "na" for v in verdicts):
        return ScoreRow(key, spec.name, None, "na", None, {**detail, "reason": verdicts[0].reason or "n/a"})
    need = n // 2 + 1
    if len(valid) < need:
        short = "; ".join(f"{v.member}: {v.status}" + (f" ({v.reason[:120]})" if v.reason else "")
                          for v in verdicts if v not in valid)
        why = (f"panel: valid verdicts from {len(valid)} of {n} members, a strict majority ({need}) is needed; "
               f"{short}")
        if any(v.status == "error" for v in verdicts):
            return ScoreRow.failed(key, spec.name, why, detail)
        return ScoreRow.unscored(key, spec.name, why, detail)
    if spec.is_binary:
        yes = sum(1 for v in valid if float(v.value) >= 0.5)  # type: ignore[arg-type]
        no = len(valid) - yes
        if yes == no:
            return ScoreRow.unscored(key, spec.name, f"panel: a tie, {yes} yes and {no} no of {n} members", detail)
        return ScoreRow.ok(key, spec.name, 1.0 if yes > no else 0.0, detail)
    mean = sum(float(v.value) for v in valid) / len(valid)  # type: ignore[arg-type]
    return ScoreRow.ok(key, spec.name, mean, detail)


class PanelScorer(Scorer):
    """Several scorers under one entry; see the module docstring."""

    Config = PanelConfig

    def __init__(self, head: type[Scorer], members: list[Scorer], config: PanelConfig) -> None:
        self.id = head.id  # type: ignore[misc]
        self.metrics = head.metrics  # type: ignore[misc]
        self.head = head
        self.members = members
        self.labels = [_label(i, m) for i, m in enumerate(members)]
        super().__init__(config)
        specs = {m.name: m for m in head.metrics}
        self.producers: dict[str, list[int]] = {name: [] for name in specs}
        for i, member in enumerate(members):
            for m in member.metrics:
                want = specs.get(m.name)
                if want is None:
                    continue
                if (m.direction, m.lo, m.hi, m.is_binary) != (want.direction, want.lo, want.hi, want.is_binary):
                    raise UserError(f"scorer {head.id!r}: panel[{i}] ({member.id}) declares {m.name} as "
                                    f"{_shape(m)}, the panel's is {_shape(want)}; members must share a metric's "
                                    f"scale")
                self.producers[m.name].append(i)
        for i, member in enumerate(members):
            if not any(i in p for p in self.producers.values()):
                raise UserError(f"scorer {head.id!r}: panel[{i}] ({member.id}) produces none of the panel's metrics "
                                f"({', '.join(specs)})")

    @property
    def remote(self) -> bool:  # type: ignore[override]
        return all(m.remote for m in self.members)

    def resolved(self) -> dict[str, Any]:
        return {"members": [m.identity() for m in self.members]}

    def available(self) -> tuple[bool, str]:
        for label, m in zip(self.labels, self.members):
            ok, reason = m.available()
            if not ok:
                return False, f"panel member {label}: {reason}"
        return True, ""

    def hub_models(self) -> list[str]:
        return [h for m in self.members for h in m.hub_models()]

    def judge_models(self) -> list[tuple[str, str | None]]:
        return [j for m in self.members for j in m.judge_models()]

    def load(self) -> None:
        """Members load as they score (`score`): several local models are never held at once."""

    def close(self) -> None:
        for m in self.members:
            if m.is_loaded:
                m.close()

    def __repr__(self) -> str:
        return f"PanelScorer({self.id!r}, members={self.labels!r})"

    def score(self, batch: list[ScoreInput]) -> list[ScoreRow]:
        local = sum(1 for m in self.members if not m.remote)
        got = [_member_rows(m, batch, close=local > 1 and not m.remote) for m in self.members]
        out = []
        for x in batch:
            for spec in self.metrics:
                verdicts = []
                for i in self.producers[spec.name]:
                    r = got[i].get((x.key, spec.name))
                    if r is None:
                        verdicts.append(MemberVerdict(self.labels[i], "error", None, "no row"))
                    else:
                        reason = r.error or ((r.detail or {}).get("reason") if r.status == "na" else None)
                        verdicts.append(MemberVerdict(self.labels[i], r.status, r.value, reason))
                out.append(aggregate(x.key, spec, verdicts))
        return out


def _member_rows(member: Scorer, batch: list[ScoreInput], *, close: bool) -> dict[tuple[str, str], ScoreRow]:
    """{(key, metric): row} of one member; a member that cannot load or raises gives error
    rows (the panel decides with the others), as the harness does for a lone scorer."""
    try:
        member.ensure_loaded()
        rows = member.score(batch)
    except Exception as exc:  # noqa: BLE001 - recorded per row, the panel goes on
        why = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        rows = [ScoreRow.failed(x.key, s.name, why[:500]) for x in batch for s in member.metrics]
    finally:
        if close and member.is_loaded:
            member.close()
    return {(r.key, r.metric): r for r in rows}


def _shape(m: MetricSpec) -> str:
    kind = "yes/no" if m.is_binary else "a score"
    return f"{kind} on [{m.lo}, {m.hi}] ({m.direction} is better)"


def build_panel(head: type[Scorer], settings: dict[str, Any],
                build_scorer: Callable[[str, dict[str, Any]], Scorer]) -> PanelScorer:
    """The panel an entry with `panel:` stands for; `build_scorer` (the registry's) builds each member."""
    from pydantic import ValidationError

    head_id = head.id
    members = []
    for i, (sid, cfg) in enumerate(member_settings(head_id, settings)):
        try:
            members.append(build_scorer(sid, {**cfg, "allow_self_grading": bool(settings.get("allow_self_grading"))}))
        except UserError as exc:
            raise UserError(f"scorer {head_id!r}: panel[{i}]: {exc.message}") from None
    try:
        config = PanelConfig(panel=tuple(m if isinstance(m, dict) else {"id": m} for m in settings[PANEL_KEY]),
                             allow_self_grading=bool(settings.get("allow_self_grading")))
    except ValidationError as exc:
        from cai_bench.io import format_validation

        raise UserError(format_validation(f"scorer {head_id!r} panel", exc)) from None
    return PanelScorer(head, members, config)


__all__ = ["MemberVerdict", "PanelConfig", "PanelScorer", "aggregate", "build_panel", "member_settings"]
