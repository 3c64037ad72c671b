"""CAI data generation: critique -> revision with any chat model, principle
selection, cleaning, SFT/preference export, and red-team task synthesis."""

from cai_bench.generation.cleaning import CleaningStats, clean_text, drop_reason
from cai_bench.generation.export import push_to_hub, split_records, write_dataset
from cai_bench.generation.pipeline import REVISION_SUFFIX, GenerateConfig, GenerateResult, generate
from cai_bench.generation.prompts import PromptItem, load_prompts
from cai_bench.generation.records import CAIRecord
from cai_bench.generation.selection import Choice, select_principles
from cai_bench.generation.store import read_records
from cai_bench.generation.synthesize import SynthesisConfig, SynthesisResult, parse_items, synthesize_task

__all__ = [
    "REVISION_SUFFIX", "CAIRecord", "Choice", "CleaningStats",
    "GenerateConfig", "GenerateResult", "PromptItem", "SynthesisConfig", "SynthesisResult", "clean_text",
    "drop_reason", "generate", "load_prompts", "parse_items", "push_to_hub", "read_records",
    "select_principles", "split_records", "synthesize_task", "write_dataset",
]
