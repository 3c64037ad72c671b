"""Tasks: a constitution plus a prompt set; built-in task data, user tasks, and
export to lm-eval task folders."""

from cai_bench.tasks._export import export_lm_eval
from cai_bench.tasks._loader import (
    BUILTIN_DIR,
    list_tasks,
    load_task,
    parse_task,
    read_prompts_jsonl,
    task_constitution,
)
from cai_bench.tasks._schema import GenerationDefaults, PromptRecord, Task, check_task_id
from cai_bench.tasks._user import read_prompts_file, write_task_folder, write_user_task

__all__ = [
    "BUILTIN_DIR",
    "GenerationDefaults",
    "PromptRecord",
    "Task",
    "check_task_id",
    "export_lm_eval",
    "list_tasks",
    "load_task",
    "parse_task",
    "read_prompts_file",
    "read_prompts_jsonl",
    "task_constitution",
    "write_task_folder",
    "write_user_task",
]
