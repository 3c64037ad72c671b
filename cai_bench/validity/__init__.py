"""Scorer validity: how far a scorer agrees with human labels.

`stats` holds the figures (pure numpy/scipy), `suites` the labelled data sets
and their loaders, `run` scores a suite with one scorer and measures it.
Report code imports only `stats` (no model code)."""

from cai_bench.validity.stats import Agreement, Counts, Figure

__all__ = ["Agreement", "Counts", "Figure"]
