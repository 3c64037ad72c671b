"""`trust_remote_code`: running a model repository's own Python code.

Only the `--trust-remote-code` command-line flag switches it on for the process;
a setting in a shared config file alone never does (a config file is data that
may come from someone else). A config that asks for it without the flag is an
error naming where it asked.
"""

from __future__ import annotations

from cai_bench.errors import UserError

_allowed = False


def allow_remote_code(on: bool) -> None:
    """Set by the CLI from `--trust-remote-code` (the only place that calls this)."""
    global _allowed
    _allowed = bool(on)


def remote_code_allowed() -> bool:
    return _allowed


def trust_remote_code(requested: bool, where: str) -> bool:
    """The value to pass to `from_pretrained(trust_remote_code=...)`: the flag's.
    `requested` (a config file's setting) without the flag is a UserError."""
    if requested and not _allowed:
        raise UserError(f"{where}: trust_remote_code: true runs the model repository's own code and needs the "
                        "--trust-remote-code flag; a config file alone cannot switch it on")
    return _allowed
