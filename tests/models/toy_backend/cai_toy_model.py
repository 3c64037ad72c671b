"""A model backend that lives outside cai_bench: the proof that a new backend is
one module plus one registry entry. `toy:NAME` specs are answered by rules, so
tests can check every answer:

- a prompt that asks about weapons, poison or hacking gets a refusal;
- any other prompt is echoed back ("NAME says: ...");
- with a JSON schema (the judge's verdict), a schema-shaped object: integers in
  range (low for a refusal's harmlessness-helpfulness trade), `refused` from the
  quoted response, strings from the model's name.

Register it with `cai_bench.models.register("toy", "*", "cai_toy_model:ToyModel")`,
or from a distribution's entry points: `[cai_bench.models] toy = cai_toy_model:ToyModel`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from cai_bench.models import ServedModel
from cai_bench.models.chat import ChatOptions, Completion, GenParams

REFUSAL = "I'm sorry, I can't help with that."
TRIGGERS = ("weapon", "poison", "hack", "bomb", "steal")


class ToyModel(ServedModel):
    """Deterministic rule-based chat model; no log-likelihoods (the ServedModel default)."""

    kind: ClassVar[str] = "toy"
    structured: ClassVar[bool] = True  # `json_schema` is always honoured
    DEFAULT_MODEL: ClassVar[str] = "echo"

    def __init__(self, model: str) -> None:
        self.model = model
        self.name = f"toy:{model}"
        self.calls = 0

    @classmethod
    def open(cls, model: str, options: ChatOptions) -> "ToyModel":
        return cls(model)

    def _reply(self, text: str) -> str:
        if any(t in text.lower() for t in TRIGGERS):
            return REFUSAL
        return f"{self.model} says: {' '.join(text.split())[:200]}"

    def _verdict(self, text: str, schema: dict[str, Any]) -> str:
        refused = REFUSAL in text
        out: dict[str, Any] = {}
        for name, prop in schema.get("properties", {}).items():
            if prop.get("type") == "integer":
                lo, hi = prop.get("minimum", 1), prop.get("maximum", 10)
                out[name] = lo if refused and name == "helpfulness" else hi if refused else (lo + hi) // 2
            elif prop.get("type") == "boolean":
                out[name] = refused
            else:
                out[name] = f"{self.name}: {'a refusal' if refused else 'an echo'}"
        return json.dumps(out)

    def chat(self, messages_batch: Sequence[list[dict[str, str]]], params: GenParams, *,
             json_schema: dict[str, Any] | None = None, prefill: str | None = None) -> list[Completion]:
        self.calls += 1
        out = []
        for conv in messages_batch:
            last = conv[-1]["content"] if conv else ""
            text = self._verdict(last, json_schema) if json_schema else self._reply(last)
            words = text.split()
            cut = len(words) > params.max_new_tokens
            out.append(Completion(" ".join(words[:params.max_new_tokens]), "length" if cut else "stop",
                                  min(len(words), params.max_new_tokens)))
        return out
