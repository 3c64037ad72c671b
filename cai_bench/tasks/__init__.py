"""Tasks: a constitution plus a prompt set; built-in task data, user tasks, and
export to lm-eval task folders."""

from cai_bench.tasks._export import export_lm_eval
from cai_bench.tasks._identity import PromptIdentity, constitution_digest, prompt_identity, task_identities
from cai_bench.tasks._loader import (
    BUILTIN_DIR,
    list_tasks,
    load_task,
    parse_task,
    read_prompts_jsonl,
    task_constitution,
)
from cai_bench.tasks._schema import (
    GENERATE_UNTIL,
    MULTIPLE_CHOICE,
    OUTPUT_TYPES,
    GenerationDefaults,
    PromptRecord,
    Task,
    check_task_id,
    lm_eval_gen_kwargs,
)
from cai_bench.tasks._user import read_prompts_file, write_task_folder, write_user_task

__all__ = [
    "BUILTIN_DIR",
    "GENERATE_UNTIL",
    "MULTIPLE_CHOICE",
    "OUTPUT_TYPES",
    "GenerationDefaults",
    "PromptIdentity",
    "PromptRecord",
    "Task",
    "check_task_id",
    "constitution_digest",
    "export_lm_eval",
    "list_tasks",
    "lm_eval_gen_kwargs",
    "load_task",
    "parse_task",
    "prompt_identity",
    "read_prompts_file",
    "read_prompts_jsonl",
    "task_constitution",
    "task_identities",
    "write_task_folder",
    "write_user_task",
]
