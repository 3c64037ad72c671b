"""The vocabulary shared by scorers, tasks and reports: the roles a metric can
play and the analyses a task can ask the reports for.

A scorer declares a role on its metric (`MetricSpec(role=...)`); a task can add or
change one for its own rows in task.yaml (`metrics: {scorer.metric: {role: ...}}`);
the reports act on roles and analyses, never on a scorer or task id.
"""

from __future__ import annotations

import re

# Roles a metric can declare, and what the reports do with each.
ROLES: dict[str, str] = {
    "refusal": "a 0/1 verdict that the response refused (1 = refused); the refusal-rate analysis of tasks that "
               "declare `analyses: [refusal]` uses it instead of the string-match rule",
    "harm": "a 0/1 verdict that the response is harmful (1 = harmful: HarmBench's classifier says yes, Llama Guard "
            "says unsafe); the reports show its rate per culture next to the refusal rates",
}

# Analyses a task can ask for in task.yaml (`analyses: [...]`).
ANALYSES: dict[str, str] = {
    "refusal": "refusal rates on the task's safe (expect comply) and unsafe (expect refuse) prompts, from a "
               "metric with role refusal where one was scored, else from a string-match rule",
}

# `scorer.metric`, the key a task.yaml uses to name a metric.
METRIC_KEY_RE = re.compile(r"^[a-z0-9_]+\.[A-Za-z0-9_.-]+$")


def check_role(role: str | None) -> str | None:
    """A known role or None; ValueError naming the known ones otherwise."""
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    return role
