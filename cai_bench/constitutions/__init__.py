"""Constitutions: the pydantic schema, the YAML loader and search path, and the
built-in constitution files (anthropic, grok, south_africa, romania). Files are
read through `cai_bench.io`, the one input layer tasks and configs use too."""

from cai_bench.constitutions._loader import (
    BUILTIN_DIR,
    check_new_id,
    is_builtin,
    list_constitutions,
    load_constitution,
    looks_like_path,
    parse_constitution,
    search_dirs,
    validate_files,
)
from cai_bench.constitutions._schema import ID_RE, Constitution, Principle, check_id
from cai_bench.constitutions._template import CRITIQUE_TEMPLATE, REVISION_TEMPLATE, render_requests

__all__ = [
    "BUILTIN_DIR",
    "CRITIQUE_TEMPLATE",
    "ID_RE",
    "REVISION_TEMPLATE",
    "Constitution",
    "Principle",
    "check_id",
    "check_new_id",
    "is_builtin",
    "list_constitutions",
    "load_constitution",
    "looks_like_path",
    "parse_constitution",
    "render_requests",
    "search_dirs",
    "validate_files",
]
