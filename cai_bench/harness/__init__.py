"""Evaluation harness: run planning, response generation through lm-eval and
scorers; it writes through `cai_bench.results` and never imports the reports.
Import submodules directly; this package import stays free of torch."""
