"""`constitutions import`: a published list of principles -> a constitution file.

Many constitutions are plain lists of preference instructions ("Please choose the
assistant response that is as harmless and ethical as possible..."), or of
critique/revision pairs. This module reads such a list (JSON, YAML or text, one
per line), rephrases each "choose the response that ..." instruction into a
principle ("The response should be as harmless and ethical as possible."),
derives ids and titles, and writes a constitution the user can then edit; the
critique and revision requests come from the documented template, or are kept
when the list has them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cai_bench.constitutions._schema import Constitution
from cai_bench.constitutions._template import render_requests
from cai_bench.errors import UserError
from cai_bench.io import parse_json, parse_yaml, plain, read_text

_TITLE_WORDS = 7
_LEAD = re.compile(r"^(?:CritiqueRequest|RevisionRequest|Critique|Revision)\s*:\s*", re.I)
_TAIL = re.compile(r"\s*(?:Options|Critique|Revision)\s*:\s*$", re.I)
_CHOOSE = re.compile(
    r"^(?:please\s+)?(?:.*?\band\s+)?(?:choose|pick|select|prefer)\s+(?:the|a)\s+(?:assistant(?:'s)?\s+)?"
    r"(?:response|answer|one)\s+that(?P<be>'s|\s+is)?\s+(?P<core>.+)$", re.I)
_AVOID = re.compile(r"^(?:however,\s*)?(?:do\s+not|don't|never|try\s+to\s+avoid)\s+(?:choose|choosing|pick|picking)\s+"
                    r"(?:responses|answers|ones|the\s+ones?)\s+that\s+(?P<core>.+)$", re.I)
_WHICH = re.compile(r"^which\s+of\s+(?:these|the)\s+(?:assistant\s+)?responses\s+(?P<verb>is|are|exhibits?)\s+"
                    r"(?P<core>.+?)\?$", re.I)
_COMPARE = re.compile(r"^compare\s+the\s+(?:assistant\s+)?responses\s+in\s+terms\s+of\s+(?P<core>.+?),?\s+and\s+"
                      r"choose\s+the\s+(?P<which>less\s+harmful|better|best)(?:\s+response|\s+one)?$", re.I)
_TRAILING = {"a", "an", "the", "as", "and", "or", "of", "to", "in", "that", "whether", "more", "most", "without",
             "with", "for", "is", "least"}
_REWRITE = re.compile(r"^(?:please\s+)?(?:rewrite|revise|amend|edit)\s+(?:the\s+)?(?:assistant(?:'s)?\s+)?"
                      r"(?:last\s+|preceding\s+)?response\s+(?:to\s+)?", re.I)


def _clean(text: str) -> str:
    text = " ".join(str(text).split())
    text = _TAIL.sub("", _LEAD.sub("", text))
    return text.strip()


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.?!])\s+", text) if s.strip()]


def _verb_phrase(core: str, be: bool) -> str:
    """`is more ethical` -> `be more ethical`; `answers the human` -> `answer the human`."""
    if be:
        return "be " + core
    first, _, rest = core.partition(" ")
    low = first.lower()
    if low in ("is", "are"):
        return ("be " + rest).strip()
    if low == "has":
        return ("have " + rest).strip()
    if low.endswith("s") and not low.endswith("ss") and len(low) > 3:
        return (first[:-1] + " " + rest).strip()
    return "be one that " + core


def rephrase(instruction: str) -> str:
    """A preference instruction as a principle: what the response should (not) be."""
    text = _clean(instruction)
    out: list[str] = []
    for s in _sentences(text):
        body = s.rstrip(".!")
        if m := _COMPARE.match(body):
            out.append(f"The response should be the {m['which']} in terms of {m['core']}.")
        elif m := _WHICH.match(s):
            verb = "be" if m["verb"].lower() in ("is", "are") else "exhibit"
            out.append(f"The response should {verb} {m['core']}.")
        elif m := _AVOID.match(body):
            core = m["core"]
            first, _, rest = core.partition(" ")
            phrase = ("be " + rest) if first.lower() in ("are", "is") else _verb_phrase(core, False)
            phrase = phrase.replace("be one that ", "", 1) if phrase.startswith("be one that ") else phrase
            out.append(f"It should not {phrase}.".replace(", or that ", ", or "))
        elif m := _CHOOSE.match(body):
            if out and m["core"].lower().startswith(("based on", "according to")):
                continue
            out.append(f"The response should {_verb_phrase(m['core'], bool(m['be']))}.")
        elif re.match(r"^(?:please\s+)?(?:choose|pick|select)\b", body, re.I) and out:
            continue  # "Choose the less harmful response." after the principle says nothing new
        elif s.endswith("?") and len(_sentences(text)) > 1:
            continue
        else:
            out.append(s if s[-1] in ".!?" else s + ".")
    return " ".join(out) or text


def _title(text: str) -> str:
    text = re.sub(r"^(?:The response should|It should)\s+(?:be\s+(?:one\s+that\s+)?)?", "", text).strip()
    text = _REWRITE.sub("", text)
    text = re.sub(r"^(?:as|the|a|an)\s+", "", text, flags=re.I)
    words = re.split(r"[.;:!?]", text, maxsplit=1)[0].split()[:_TITLE_WORDS]
    while len(words) > 1 and words[-1].lower().rstrip(",") in _TRAILING:
        words.pop()
    title = " ".join(words).rstrip(",") or "Principle"
    return title[0].upper() + title[1:]


def _slug(title: str, taken: set[str]) -> str:
    words = re.sub(r"[^a-z0-9]+", " ", title.lower()).split()
    words = [w for w in words if w not in ("a", "an", "the", "as", "and", "or", "of", "to", "in", "that")] or words
    base = "_".join(words[:5]) or "principle"
    pid, n = base, 2
    while pid in taken:
        pid, n = f"{base}_{n}", n + 1
    taken.add(pid)
    return pid


MAX_IMPORT_BYTES = 1 << 20  # published lists are a few KB (the CAI paper's, llm-swarm's: under 20 KB)
MAX_TEXT_CHARS = 10_000  # one principle, critique or revision request: a paragraph, not a document
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text(value: Any, where: str, field: str, *, required: bool = False) -> str:
    """One text field of an item, checked: a string (a number is taken as its
    text), no control characters, at most MAX_TEXT_CHARS, non-blank when
    `required`. Anything else is a UserError naming the item and the field."""
    if value is None or value == "":
        if required:
            raise UserError(f"{where}: {field}: empty (a principle needs text)")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UserError(f"{where}: {field}: expected a text, got {_kind(value)}")
    text = str(value)
    if len(text) > MAX_TEXT_CHARS:
        raise UserError(f"{where}: {field}: {len(text):,} characters; at most {MAX_TEXT_CHARS:,} per text "
                        "(a principle is a paragraph)")
    if (bad := _CONTROL.search(text)) is not None:
        raise UserError(f"{where}: {field}: control character U+{ord(bad.group()):04X} (a binary file?)")
    if required and not text.strip():
        raise UserError(f"{where}: {field}: empty (a principle needs text)")
    return text


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false"}.get(type(value), type(value).__name__)


def _few_shot(chats: Any, path: Path) -> list[list[dict]]:
    """llm-swarm's `system_chat`: a list of chats, each a list of {role, content}."""
    if chats is None:
        return []
    if not isinstance(chats, list):
        raise UserError(f"{path}: system_chat: expected a list of chats, got {_kind(chats)}")
    out: list[list[dict]] = []
    for i, chat in enumerate(chats, start=1):
        if not isinstance(chat, list) or not all(isinstance(m, dict) for m in chat):
            raise UserError(f"{path}: system_chat {i}: expected a list of {{role, content}} messages")
        out.append(chat)
    return out


def _items(data: Any, path: Path) -> tuple[list[dict[str, str]], list[list[dict]]]:
    """Principles as {description} or {critique, revision[, key]} dicts, plus few-shot chats.
    Every text is checked by `_text`, so a wrongly shaped list fails here, naming the item."""
    few_shot: list[list[dict]] = []
    if isinstance(data, dict) and "constitutions" in data:  # llm-swarm: {constitutions: [{critic, revision}], system_chat}
        few_shot = _few_shot(data.get("system_chat"), path)
        data = data["constitutions"]
    if isinstance(data, dict) and "principles" in data:
        data = data["principles"]
    if isinstance(data, dict):  # the CAI paper's {harmful0: {prompt: [critique], edit_request}}
        out = []
        for key, v in data.items():
            where = f"{path}: entry {key!r}"
            if isinstance(v, dict) and ("prompt" in v or "edit_request" in v):
                prompt = v.get("prompt")
                critique = prompt[0] if isinstance(prompt, list) and prompt else prompt
                item = {"key": str(key), "critique": _clean(_text(critique, where, "prompt")),
                        "revision": _clean(_text(v.get("edit_request"), where, "edit_request"))}
                if not (item["critique"] or item["revision"]):
                    raise UserError(f"{where}: prompt and edit_request: empty (a principle needs text)")
                out.append(item)
            elif isinstance(v, str):
                out.append({"key": str(key), "description": _text(v, where, "text", required=True)})
            else:
                raise UserError(f"{where}: expected a text or {{prompt, edit_request}}, got {_kind(v)}")
        return out, few_shot
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a list of principles (texts, or {{critic, revision}} pairs), "
                        f"got {_kind(data)}")
    out = []
    for i, v in enumerate(data, start=1):
        where = f"{path}: item {i}"
        if isinstance(v, str):
            out.append({"description": _text(v, where, "text", required=True)})
        elif isinstance(v, dict):
            critique = _clean(_text(v.get("critique") or v.get("critic"), where, "critique"))
            revision = _clean(_text(v.get("revision"), where, "revision"))
            desc = _text(v.get("description") or v.get("principle") or v.get("text"), where, "description")
            title = _text(v.get("title"), where, "title").strip()
            if critique or revision:
                out.append({"critique": critique, "revision": revision,
                            **({"title": title} if title else {}), **({"description": desc} if desc.strip() else {})})
            elif desc.strip():
                out.append({"description": desc, **({"title": title} if title else {})})
            else:
                raise UserError(f"{where}: expected a text, or a mapping with description or critic/revision "
                                "(all empty here)")
        else:
            raise UserError(f"{where}: expected a text or a mapping, got {_kind(v)}")
    return out, few_shot


def read_list(path: Path) -> tuple[list[dict[str, str]], list[list[dict]]]:
    """The principles in a JSON, YAML or text file (one per non-empty line; `#` comments),
    read through the one input layer (UTF-8, bounded size, nesting and aliases)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # read_text names the problem
    if size > MAX_IMPORT_BYTES:
        raise UserError(f"{path}: {size:,} bytes; a list of principles to import is at most "
                        f"{MAX_IMPORT_BYTES:,} bytes")
    raw = read_text(path)
    if "\x00" in raw:
        raise UserError(f"{path}:{raw.count(chr(10), 0, raw.index(chr(0))) + 1}: NUL byte; "
                        "expected a JSON, YAML or text file (a binary file?)")
    suffix = path.suffix.lower()
    if suffix == ".json":
        data: Any = parse_json(raw, str(path))
    elif suffix in (".yaml", ".yml"):
        data = plain(parse_yaml(raw, str(path)))
    else:
        data = []
        for n, ln in enumerate(raw.splitlines(), start=1):
            if ln.strip() and not ln.lstrip().startswith("#"):
                data.append(_text(ln.strip(), f"{path}:{n}", "text", required=True))
    items, few_shot = _items(data, path)
    if not items:
        raise UserError(f"{path}: no principles found")
    return items, few_shot


def build_constitution(path: Path, *, cid: str, name: str, culture: str | None = None,
                       license: str = "") -> Constitution:
    """A valid constitution from a list file: ids and titles derived, "choose the
    response that ..." instructions rephrased as principles."""
    items, few_shot = read_list(path)
    taken: set[str] = set()
    principles = []
    for it in items:
        if it.get("critique") or it.get("revision"):
            desc = rephrase(it["description"]) if it.get("description") else ""
            title = it.get("title") or _title(it.get("revision") or it["critique"])
            critique = it.get("critique") or render_requests(title, desc)[0]
            revision = it.get("revision") or render_requests(title, desc)[1]
        else:
            desc = rephrase(it["description"])
            title = it.get("title") or _title(desc)
            critique, revision = render_requests(title, desc)
        pid = _slug(it["key"], taken) if it.get("key") else _slug(title, taken)
        principles.append({"id": pid, "title": title, "description": desc, "critique": critique,
                           "revision": revision})
    try:
        return Constitution.model_validate({
            "id": cid, "name": name, "culture": culture or cid,
            "description": f"Imported from {path.name} by `cai-bench constitutions import`; edit titles, "
                           "descriptions and requests as needed.",
            "source": path.name, "license": license, "principles": principles, "few_shot": few_shot,
        })
    except Exception as exc:  # noqa: BLE001 - pydantic: one line naming the field
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            e = exc.errors()[0]
            raise UserError(f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
        raise


def dump_constitution(c: Constitution) -> str:
    """YAML in the order of the built-in files."""
    import yaml

    data = c.model_dump(mode="json", exclude={"path"})
    if not data.get("few_shot"):
        data.pop("few_shot", None)
    return ("# Written by `cai-bench constitutions import`; edit freely, then `cai-bench constitutions validate`.\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))
