"""`cai-bench experiment`: several pipelines (variants of one base config along named
axes) sharing one results store, every stage computed once however many variants
use it. See docs/experiments.md.

    config.py  exp.yaml (or `pipeline --vary`) -> validated axes and variant configs
    plan.py    which stages each variant computes, shares or has cached; dry-run lines
    runner.py  task stages first, then each variant's pipeline; the experiment's record
"""

from cai_bench.experiment.config import ExperimentSpec, Variant, load_experiment_file, spec_from_vary

__all__ = ["ExperimentSpec", "Variant", "load_experiment_file", "spec_from_vary", "run_experiment"]


def __getattr__(name: str):
    if name == "run_experiment":
        from cai_bench.experiment.runner import run_experiment

        return run_experiment
    raise AttributeError(name)
