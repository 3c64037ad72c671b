"""The constitution schema (docs/constitutions_and_tasks.md, "Constitution files"):
a culture's principles, each with a critique request and a revision request, plus
optional few-shot chats."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cai_bench.constitutions._template import render_requests
from cai_bench.errors import UserError

ID_RE = re.compile(r"^[a-z0-9_]+$")


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} must match [a-z0-9_]+ (lowercase letters, digits, underscore)")
    return value


class Principle(BaseModel):
    """One principle; `critique`/`revision` default to the documented template."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str = Field(min_length=1)
    description: str = ""
    critique: str = Field(min_length=1)
    revision: str = Field(min_length=1)
    category: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_requests(cls, data: Any) -> Any:
        if isinstance(data, dict) and (not data.get("critique") or not data.get("revision")):
            # filled even without a title, so a missing title is the one error reported
            data = dict(data)
            critique, revision = render_requests(str(data.get("title") or ""), str(data.get("description") or ""))
            data["critique"] = data.get("critique") or critique
            data["revision"] = data.get("revision") or revision
        return data

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        return check_id(v, "principle id")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str
    content: str

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        if v not in ("system", "user", "assistant"):
            raise ValueError(f"role {v!r} must be system, user or assistant")
        return v


class Constitution(BaseModel):
    """A culture's constitution; `path` is where it was loaded from (not dumped)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = Field(min_length=1)
    culture: str = Field(min_length=1)
    description: str = ""
    source: str = ""
    license: str = ""
    principles: list[Principle] = Field(min_length=1)
    few_shot: list[list[dict]] = []
    path: Path | None = Field(default=None, exclude=True)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v, "constitution id")

    @field_validator("few_shot")
    @classmethod
    def _chats(cls, v: list[list[dict]]) -> list[list[dict]]:
        for chat in v:
            if not chat:
                raise ValueError("a few-shot chat must not be empty")
            for msg in chat:
                Message.model_validate(msg)
        return v

    @field_validator("principles")
    @classmethod
    def _unique(cls, v: list[Principle]) -> list[Principle]:
        seen: set[str] = set()
        for i, p in enumerate(v):
            if p.id in seen:
                raise ValueError(f"duplicate principle id {p.id!r} (principle {i + 1})")
            seen.add(p.id)
        return v

    def principle(self, pid: str) -> Principle:
        """The principle with id `pid`; UserError (not KeyError) if unknown."""
        for p in self.principles:
            if p.id == pid:
                return p
        known = ", ".join(p.id for p in self.principles[:8])
        more = ", ..." if len(self.principles) > 8 else ""
        raise UserError(f"constitution {self.id!r} has no principle {pid!r} (known: {known}{more})")

    @property
    def principle_ids(self) -> list[str]:
        return [p.id for p in self.principles]
