"""The one input layer: every file a user hands cai-bench is read here.

YAML (safe_load only, with the line of every key), JSONL, pydantic errors as
`file:line: field: reason`, the hub-offline switch, and JSON found inside a
model's free text. Constitutions, tasks, run configs, training recipes,
generation prompts and `score` files all use it, so a bad input reads the same
everywhere: one line naming the file, the place and the reason (exit code 2).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cai_bench.errors import UserError

M = TypeVar("M", bound=BaseModel)

MAX_PROBLEMS = 20  # enough to fix a file in one pass, short enough for one line
MAX_DEPTH = 100  # nesting of an input file; real ones stay under 10, and deeper ones exhaust the stack later
MAX_ALIAS_NODES = 100_000  # nodes YAML aliases may add beyond the file's own ("billion laughs" adds 9**9)
_SURROGATE = re.compile("[\ud800-\udfff]")  # a lone UTF-16 half: JSON/YAML `\\ud800` escapes make one


# ---------------------------------------------------------------- text


def read_text(path: Path | str) -> str:
    """A file's text as UTF-8 (a leading BOM dropped), or a UserError naming the
    file and the line of the first bad byte."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 (byte {exc.start})") from None
    return text.removeprefix("\ufeff")


def is_dir(path: Path | str) -> bool:
    """`Path.is_dir` for a path a user typed: False, not an OSError, for a name
    too long for the file system or one with a NUL byte."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def expand_user(path: Path | str) -> Path:
    """`Path.expanduser` for a path a user typed: `~nobody/x` (no such user) stays as written."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def is_file(path: Path | str) -> bool:
    """`Path.is_file` for a path a user typed (see `is_dir`)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------- YAML


class Located(dict):
    """A mapping from YAML that remembers the source line of each key (1-based)."""

    def __init__(self, data: dict, lines: dict, line: int) -> None:
        super().__init__(data)
        self.lines = lines
        self.line = line


class LocatedList(list):
    """A YAML sequence that remembers its own line and each item's line."""

    def __init__(self, data: list, lines: list[int], line: int) -> None:
        super().__init__(data)
        self.lines = lines
        self.line = line


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records lines and refuses duplicate or unhashable keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> Located:
    """A Located mapping. Keys merged in by `<<: *base` may be overridden by keys
    written in the mapping (YAML's merge rule); a key written twice is an error."""
    written = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # YAML merge keys (<<) as SafeLoader does: merged pairs first
    merged = len(node.value) - written
    mapping: dict = {}
    lines: dict = {}
    seen: set = set()
    for i, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"unhashable key {key!r}", key_node.start_mark
            ) from None
        if i >= merged:
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    return Located(mapping, lines, node.start_mark.line + 1)


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode, deep: bool = False) -> LocatedList:
    items = [loader.construct_object(child, deep=True) for child in node.value]
    return LocatedList(items, [child.start_mark.line + 1 for child in node.value], node.start_mark.line + 1)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Refuse, before anything is built, a YAML graph whose aliases expand past
    MAX_ALIAS_NODES nodes beyond the file's own, that nests deeper than MAX_DEPTH,
    that refers to itself, or that holds a lone surrogate: building such a
    document copies every alias (memory without bound) or crashes later."""
    memo: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
    active: set[int] = set()

    def walk(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in memo:
            size, height = memo[key]
        elif key in active:
            raise UserError(f"{source}:{node.start_mark.line + 1}: invalid YAML: an alias refers to itself")
        elif isinstance(node, yaml.ScalarNode):
            if (bad := _SURROGATE.search(node.value)) is not None:
                raise UserError(f"{source}:{node.start_mark.line + 1}: lone UTF-16 surrogate "
                                f"U+{ord(bad.group()):04X} (not a character; fix the \\u escape)")
            size, height = memo[key] = (1, 1)
        else:
            active.add(key)
            kids = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
            size, height = 1, 1
            for kid in kids:
                s, h = walk(kid, depth + 1)
                size, height = size + s, max(height, h + 1)
            active.discard(key)
            memo[key] = (size, height)
        if depth + height > MAX_DEPTH:
            raise UserError(f"{source}:{node.start_mark.line + 1}: invalid YAML: nested deeper than {MAX_DEPTH} levels")
        return size, height

    total, _ = walk(root, 0)
    if total - len(memo) > MAX_ALIAS_NODES:
        raise UserError(f"{source}: invalid YAML: aliases expand to {total:,} nodes from {len(memo):,} written "
                        f"(at most {MAX_ALIAS_NODES:,} added by aliases; an alias bomb?)")


def _load_checked(text: str, loader_cls: type[yaml.SafeLoader], source: str) -> Any:
    """`yaml.load` with `_check_nodes` between composing and constructing."""
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text with located mappings; a syntax error is `source:line: invalid YAML: reason`.
    Anchors, aliases and merge keys (`<<: *base`) work, within MAX_ALIAS_NODES and MAX_DEPTH."""
    try:
        return _load_checked(text, _LineLoader, source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark else ""
        ctx = exc.context_mark
        extra = f" ({exc.context} at line {ctx.line + 1})" if ctx and exc.context and ctx is not mark else ""
        reason = " ".join(str(exc.problem or exc).split())
        raise UserError(f"{source}{where}: invalid YAML: {reason}{extra}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise UserError(f"{source}: invalid YAML: nested too deeply") from None


def safe_yaml(text: str, source: str) -> Any:
    """Plain `yaml.safe_load` data (no line bookkeeping) under the same bounds as
    `parse_yaml`, for YAML that is not a file (a `--set` value); YAML errors propagate."""
    try:
        return _load_checked(text, yaml.SafeLoader, source)
    except RecursionError:
        raise UserError(f"{source}: invalid YAML: nested too deeply") from None


def load_yaml(path: Path | str) -> Any:
    """Parse a YAML file (UTF-8, safe_load); mappings keep the line of each key."""
    return parse_yaml(read_text(path), str(path))


def load_yaml_mapping(path: Path | str, expected: str) -> Located:
    """A YAML file that must hold a mapping; an empty file is an empty mapping.
    `expected` says what the mapping should contain, for the error."""
    data = load_yaml(path)
    if data is None:
        return Located({}, {}, 1)
    if not isinstance(data, dict):
        raise UserError(f"{path}:1: (top level): expected a mapping with {expected}, got {_kind(data)}")
    return data


def _kind(obj: Any) -> str:
    return {list: "a list", LocatedList: "a list", str: "a string", int: "a number", float: "a number",
            bool: "true/false"}.get(type(obj), type(obj).__name__)


def plain(obj: Any) -> Any:
    """Strip line bookkeeping: plain dicts/lists for pydantic and dumps."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    return obj


def line_of(data: Any, loc: Sequence[Any]) -> int | None:
    """Best source line for a pydantic error location inside located YAML data."""
    best = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, Located):
            if part not in node.lines:
                break
            best = node.lines[part]
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if isinstance(node, LocatedList):
                best = node.lines[part]
            node = node[part]
            best = getattr(node, "line", best)
        else:
            break
    return best


# ---------------------------------------------------------------- errors


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flat(tp: Any) -> list[Any]:
    """`tp` with Optional/Union/Annotated unwrapped into its alternatives."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _flat(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [x for arg in typing.get_args(tp) for x in _flat(arg)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def known_fields(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The field names (and validation aliases) a user may write at `loc[:-1]`
    inside `model`: the candidates for a "did you mean" on an unknown field at
    `loc`. Walks nested models, lists, dicts and unions; empty when the place
    is not a model."""
    here: list[Any] = [model]
    for part in loc[:-1]:
        alts = [t for tp in here for t in _flat(tp)]
        models = [t for t in alts if _is_model(t)]
        named = [t.model_fields[part].annotation for t in models if isinstance(part, str) and part in t.model_fields]
        if named:
            here = named
        elif any(isinstance(part, str) and t.__name__ == part for t in models):  # a union member's tag
            here = [t for t in models if t.__name__ == part]
        else:  # a list index or a dict key: step into the containers' items
            here = [typing.get_args(t)[-1] for t in alts
                    if typing.get_origin(t) in (list, tuple, set, frozenset, dict) and typing.get_args(t)]
    names: list[str] = []
    for t in (t for tp in here for t in _flat(tp) if _is_model(t)):
        for name, info in t.model_fields.items():
            alias = info.validation_alias
            choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
            names += [name, *(c for c in choices if isinstance(c, str)), *([info.alias] if info.alias else [])]
    return list(dict.fromkeys(names))


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """` (did you mean X?)` for the closest candidate to a misspelt `word`, or ""."""
    close = difflib.get_close_matches(word, [c for c in candidates if c != word], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def model_named(title: str) -> type[BaseModel] | None:
    """The one imported pydantic model class called `title` (a ValidationError's
    `title` is the validated model's name), or None when none or several are: it
    lets the error formatter suggest field names without every caller passing
    its model."""
    found: list[type[BaseModel]] = []
    todo = list(BaseModel.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__name__ == title and cls not in found:
            found.append(cls)
    return found[0] if len(found) == 1 else None


def describe_error(err: Mapping[str, Any], model: type[BaseModel] | None = None) -> str:
    """The reason of one pydantic error, worded for a user; an unknown field of
    `model` gets the closest known name."""
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        loc = tuple(err.get("loc", ()))
        if model is None or not loc:
            return "unknown field"
        return "unknown field" + did_you_mean(str(loc[-1]), known_fields(model, loc))
    if kind == "missing":
        return "missing required field"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    value = err.get("input")
    if not isinstance(value, (dict, list)) and value is not None and kind not in ("json_invalid",):
        msg += f" (got {_short(value)})"
    return msg


def validation_problems(path: Path | str, exc: ValidationError, data: Any = None, *,
                        line: int | None = None, prefix: Sequence[Any] = (),
                        aliases: Mapping[str, str] | None = None) -> list[str]:
    """One `file:line: field: reason` per pydantic error. The line comes from
    located YAML `data`, else `line` (a JSONL record's line), else is left out.
    `prefix` is prepended to each field path (a record inside a list);
    `aliases` maps a model field back to the name the user wrote."""
    model = model_named(exc.title)
    return [problem_line(path, err, data, line=line, prefix=prefix, aliases=aliases, model=model)
            for err in exc.errors()]


def problem_line(path: Path | str, err: Mapping[str, Any], data: Any = None, *, line: int | None = None,
                 prefix: Sequence[Any] = (), aliases: Mapping[str, str] | None = None,
                 model: type[BaseModel] | None = None) -> str:
    """One pydantic error (an item of `exc.errors()`) as `file:line: field: reason`;
    `model` (the validated class) lets an unknown field name its closest known one."""
    loc = tuple(err["loc"])
    if aliases and loc and loc[0] in aliases:
        loc = (aliases[loc[0]], *loc[1:])
    full = (*prefix, *loc)
    field = field_path(full)
    at = line_of(data, full) if data is not None else None
    at = at or line
    where = f"{path}:{at}" if at else str(path)
    return f"{where}: {field}: {describe_error(err, model)}"


def field_path(parts: Sequence[Any]) -> str:
    """A field's dotted path for an error; a key that is empty or holds spaces or
    control characters (a key a file made up) is quoted, so the error stays one readable line."""
    def one(part: Any) -> str:
        text = str(part)
        return text if text and text.isprintable() and not any(c.isspace() for c in text) else repr(text)

    return ".".join(one(p) for p in parts) or "(top level)"


def format_validation(path: Path | str, exc: ValidationError, data: Any = None, **kw: Any) -> str:
    """`validation_problems` joined into the one line a UserError prints."""
    return join_problems(validation_problems(path, exc, data, **kw))


def join_problems(problems: Sequence[str]) -> str:
    shown = list(problems[:MAX_PROBLEMS])
    more = len(problems) - len(shown)
    return "; ".join(shown) + (f"; ... and {more} more" if more > 0 else "")


def validate(model: type[M], data: Any, path: Path | str, **kw: Any) -> M:
    """`model.model_validate(plain(data))` or a UserError from `format_validation`."""
    try:
        return model.model_validate(plain(data))
    except ValidationError as exc:
        raise UserError(format_validation(path, exc, data, **kw)) from None


# ---------------------------------------------------------------- JSON


def json_problem(value: Any) -> str | None:
    """Why a decoded JSON value cannot be input, or None: nesting deeper than
    MAX_DEPTH, or a lone surrogate (a `\\ud800` escape), which no UTF-8 file,
    store or terminal can hold and so crashes whoever writes it next."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if (bad := _SURROGATE.search(node)) is not None:
                return f"lone UTF-16 surrogate U+{ord(bad.group()):04X} (not a character; fix the \\u escape)"
            continue
        if depth > MAX_DEPTH and isinstance(node, (dict, list)):
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(node, dict):
            stack.extend((x, depth + 1) for kv in node.items() for x in kv)
        elif isinstance(node, list):
            stack.extend((x, depth + 1) for x in node)
    return None


def parse_json(text: str, source: str) -> Any:
    """A whole-file JSON value, or a UserError `source:line: reason` (syntax,
    nesting, lone surrogate)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise UserError(f"{source}: invalid JSON: nested deeper than {MAX_DEPTH} levels") from None
    problem = json_problem(value)
    if problem is None:
        return value
    if "surrogate" in problem:
        raise UserError(f"{source}:{_escape_line(text)}: {problem}")
    raise UserError(f"{source}: invalid JSON: {problem}")


def _escape_line(text: str) -> int:
    """The line of the first `\\uD800`-`\\uDFFF` escape (where a lone surrogate was written)."""
    m = re.search(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}", text)
    return text.count("\n", 0, m.start()) + 1 if m else 1


# ---------------------------------------------------------------- JSONL


def read_jsonl(path: Path | str, *, what: str = "records", allow_empty: bool = False,
               objects: bool = True) -> list[tuple[int, Any]]:
    """`(line number, value)` for every non-blank line of a JSONL file.

    Invalid JSON, a line that is not an object (when `objects`), or (unless
    `allow_empty`) a file with no records is a UserError naming file and line."""
    path = Path(path)
    text = read_text(path)
    rows: list[tuple[int, Any]] = []
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{n}: invalid JSON: {exc.msg} (column {exc.colno})")
        except RecursionError:
            problems.append(f"{path}:{n}: invalid JSON: nested too deeply")
        else:
            if (problem := json_problem(obj)) is not None:
                problems.append(f"{path}:{n}: {problem}")
            elif isinstance(obj, dict) or not objects:
                rows.append((n, obj))
            else:
                problems.append(f"{path}:{n}: expected a JSON object per line, got {type(obj).__name__}")
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise UserError(join_problems(problems))
    if not rows and not allow_empty:
        raise UserError(f"{path}: no {what} (the file is empty)")
    return rows


def validate_rows(path: Path | str, rows: Sequence[tuple[int, dict]], model: type[M]) -> list[M]:
    """Each `(line, object)` validated by `model`; every problem (up to
    MAX_PROBLEMS) named by file, line and field in one UserError."""
    out: list[M] = []
    problems: list[str] = []
    for n, obj in rows:
        try:
            out.append(model.model_validate(obj))
        except ValidationError as exc:
            problems += validation_problems(path, exc, line=n)
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise UserError(join_problems(problems))
    return out


# ---------------------------------------------------------------- model text into the store


ANSWER_BYTES_PER_TOKEN = 64  # generous: a token is 3-4 bytes of UTF-8 on average, at most a few dozen
MIN_ANSWER_BYTES = 64 * 1024
ANSWER_MARKER = "[cai-bench: "  # opens the note `clean_text` appends to a text it changed (docs/reliability.md)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # no UTF-8 store (nor PostgreSQL TEXT) can hold these


def answer_byte_cap(max_new_tokens: int | None) -> int:
    """The most UTF-8 bytes of one model answer kept: 64 per token of the
    generation limit, at least 64 KiB. A server may send far more than it was
    asked for (a 50 MB answer to max_new_tokens 256); the rest is noise that
    would bloat the store and every report built from it."""
    return max(MIN_ANSWER_BYTES, ANSWER_BYTES_PER_TOKEN * (max_new_tokens or 0))


def clean_text(text: str, max_bytes: int) -> tuple[str, str | None]:
    """Model text made storable: each lone surrogate and NUL becomes U+FFFD,
    and the text is cut at a character boundary within `max_bytes` UTF-8 bytes.
    Returns the text and what was done (None when nothing); a changed text ends
    with a line `[cai-bench: answer ...]` saying so, so the change is visible
    wherever the text goes (reports, exports) and never mistaken for the model's."""
    notes: list[str] = []
    bad = len(_UNSTORABLE.findall(text))
    if bad:
        text = _UNSTORABLE.sub("\ufffd", text)
        notes.append(f"{bad:,} code point{'s' if bad != 1 else ''} that cannot be stored "
                     "(lone surrogates, NUL) replaced by U+FFFD")
    data = text.encode("utf-8")
    if len(data) > max_bytes:
        text = data[:max_bytes].decode("utf-8", "ignore")
        notes.append(f"truncated to {max_bytes:,} of {len(data):,} bytes")
    if not notes:
        return text, None
    note = "; ".join(notes)
    return f"{text}\n{ANSWER_MARKER}answer {note}]", note


# ---------------------------------------------------------------- hub


_TRUE = ("1", "on", "yes", "true")


def parse_assignment(item: str, flag: str = "--set", *, form: str = "KEY=VALUE", min_parts: int = 1) -> tuple[str, Any]:
    """One `KEY=VALUE` command-line override, read the same way for every flag that
    takes one (`train --set`, `pipeline --set`, `--scorer-set`), so a value means the
    same thing wherever it is typed.

    The key is dotted (`split.max_train`, `judge.backend`) with at least `min_parts`
    non-empty parts; `form` is what the one error message shows as expected. The
    value is YAML, so `32` is a number, `true` a boolean, `null` None and
    `{a: 1}` / `[x]` a mapping / list; an empty value is "". Text that only YAML's
    block syntax would turn into structure (`Answer: briefly`, `- x`) or that is not
    valid YAML (`@me`) stays text, except a value that opens with `{` or `[`: that must
    be valid YAML."""
    key, sep, raw = item.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or len(parts) < min_parts or not all(parts):
        raise UserError(f"{flag} {item!r}: expected {form}")
    text = raw.strip()
    flow = text.startswith(("{", "["))
    try:
        value = safe_yaml(text, f"{flag} {item!r}") if text else ""
    except yaml.YAMLError as exc:
        if flow:
            reason = str(getattr(exc, "problem", None) or exc).splitlines()[0]
            raise UserError(f"{flag} {item!r}: the value is not valid YAML ({reason})") from None
        value = text
    if isinstance(value, (dict, list)) and not flow:
        value = text
    return ".".join(parts), value


def set_path(mapping: dict[str, Any], path: Sequence[str], value: Any, *, where: str) -> None:
    """Put `value` at `path` (a dotted key's parts) in nested mappings, making the
    sections that are missing or null; `where` (flag and item) starts the error when
    a part already holds a value rather than a section, which is never overwritten."""
    node = mapping
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UserError(f"{where}: {part} is not a section")
        node = child
    node[path[-1]] = value


def hub_offline(*, datasets: bool = False) -> bool:
    """Whether the Hugging Face hub must not be contacted (`HF_HUB_OFFLINE`, and
    `HF_DATASETS_OFFLINE` too when `datasets`). Read at call time, not import
    time, so a test or a CLI flag that sets it later is honoured."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if datasets else ("HF_HUB_OFFLINE",)
    return any(os.environ.get(n, "0").strip().lower() in _TRUE for n in names)


# ---------------------------------------------------------------- JSON in model text


def json_values(text: str | None) -> Iterator[tuple[Any, int, int]]:
    """Every JSON object or array embedded in free text, as `(value, start, end)`,
    scanning left to right (prose and code fences around them are skipped; an
    invalid candidate is skipped one character on, so nested values are found)."""
    if not text:
        return
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i != -1]
        if not starts:
            return
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            pos = start + 1
            continue
        yield value, start, end
        pos = start + 1


def json_from_text(text: str | None, accept: Any = None, *, last: bool = False) -> Any:
    """The JSON a model wrote: the whole (fence-stripped) text if it parses, else
    the first (or `last`) embedded value for which `accept(value)` returns a
    non-None result. `accept` (e.g. a pydantic validator wrapper) maps the raw
    value to what the caller wants (raising ValueError/TypeError, or returning
    None, rejects it); without it every object or array counts. None when
    nothing fits."""
    if not text:
        return None
    check = accept or (lambda v: v)

    def take(value: Any) -> Any:
        try:
            return check(value)
        except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
            return None

    whole = _strip_fence(text.strip())
    try:
        got = take(json.loads(whole))
    except (ValueError, RecursionError):
        got = None
    if got is not None:
        return got
    found = None
    skip_to = -1
    for value, start, end in json_values(text):
        if start < skip_to:
            continue  # inside a value already taken
        got = take(value)
        if got is None:
            continue
        if not last:
            return got
        found, skip_to = got, end
    return found


def _strip_fence(text: str) -> str:
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        body = text[3:-3]
        first, _, rest = body.partition("\n")
        return (rest if first.strip().isalnum() or not first.strip() else body).strip()
    return text
