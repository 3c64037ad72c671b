"""The CAI loop as one resumable command: task -> data -> sft -> dpo -> eval -> report.

`run_pipeline(config)` composes the other packages (tasks, generation, training,
harness, reports); each stage is cached under `<out>/<stage>/`. See
docs/pipeline.md.
"""

from cai_bench.pipeline.config import PROFILES, PipelineConfig, build_config, load_config_file

__all__ = ["PROFILES", "PipelineConfig", "build_config", "load_config_file", "run_pipeline"]


def __getattr__(name: str):
    if name == "run_pipeline":
        from cai_bench.pipeline.runner import run_pipeline

        return run_pipeline
    raise AttributeError(name)
