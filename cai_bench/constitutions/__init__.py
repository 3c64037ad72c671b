"""Constitutions: the pydantic schema, the YAML loader and search path, and the
built-in constitution files (anthropic, grok, south_africa, romania). The YAML
helpers (line numbers, error lines) are public here because tasks read their
files the same way."""

from cai_bench.constitutions._loader import (
    BUILTIN_DIR,
    list_constitutions,
    load_constitution,
    looks_like_path,
    parse_constitution,
    search_dirs,
    validate_files,
)
from cai_bench.constitutions._schema import ID_RE, Constitution, Principle, check_id
from cai_bench.constitutions._template import CRITIQUE_TEMPLATE, REVISION_TEMPLATE, render_requests
from cai_bench.constitutions._yaml import line_of, load_yaml, plain, read_text, validation_problems

__all__ = [
    "BUILTIN_DIR",
    "CRITIQUE_TEMPLATE",
    "ID_RE",
    "REVISION_TEMPLATE",
    "Constitution",
    "Principle",
    "check_id",
    "line_of",
    "list_constitutions",
    "load_constitution",
    "load_yaml",
    "looks_like_path",
    "parse_constitution",
    "plain",
    "read_text",
    "render_requests",
    "search_dirs",
    "validate_files",
    "validation_problems",
]
