"""Third-party extensions found through Python entry points (scorers, model backends):
one reader, so both registries name an entry point's origin the same way."""

from __future__ import annotations

from importlib.metadata import entry_points


def plugin_entry_points(group: str) -> list[tuple[str, str, str]]:
    """(name, "module:attr" target, where it comes from) of each entry point of `group`."""
    return [(ep.name, ep.value, f"entry point {ep.value} ({ep.dist.name if ep.dist else 'unknown'})")
            for ep in entry_points(group=group)]
