"""Export tasks as an lm-eval 0.4.x task folder (docs/constitutions_and_tasks.md,
"Export to lm-eval").

Each task is written as lm-eval's task of its kind (`output_type`). Layout of `out_dir`:
  _cai_base                shared config of generate_until tasks (no .yaml suffix, so lm-eval does not
                           index it as a task)
  <name>.yaml              one per generate_until task: `include: _cai_base`, absolute `data_files`
  <name>.jsonl             the task's docs: id, prompt, reference, principle_id, category, expect, target
  cai_bench<suffix>.yaml   group of the generate_until tasks, with aggregate_metric_list
  cai_bench_metric.py      fixed shim importing cai_bench.tasks.lm_eval_metric (for `!function`)
  <name>.yaml + .jsonl     one per multiple_choice task: a standalone `output_type: multiple_choice`
                           task (query, choices, label; metrics acc and acc_norm) over its items,
                           read from its item source (cai_bench.tasks.hhh); not in the group, whose
                           aggregate metrics are the generation ones

Everything here is written by cai-bench from its own templates: user text only
ever lands in the jsonl data, never in YAML keys or code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cai_bench.errors import UserError
from cai_bench.paths import atomic_write_text
from cai_bench.tasks._outdir import output_dir
from cai_bench.tasks._schema import GENERATE_UNTIL, GROUP, ID_RE_SUFFIX, MULTIPLE_CHOICE, Task, lm_eval_gen_kwargs

BASE_FILE = "_cai_base"
METRIC_SHIM = "cai_bench_metric.py"

_SHIM_TEXT = '''"""Written by cai-bench: lm-eval `!function` entry points for cai-bench metrics."""
from cai_bench.tasks.lm_eval_metric import length_results, similarity_results  # noqa: F401
'''


class _Function(str):
    """A scalar dumped as `!function name` (only cai-bench's own fixed names)."""


def _function_representer(dumper: yaml.SafeDumper, data: _Function) -> yaml.Node:
    return dumper.represent_scalar("!function", str(data))


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Function, _function_representer)


def _dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


def _gen_kwargs(task: Task) -> dict[str, Any]:
    g = task.generation
    return lm_eval_gen_kwargs(g.max_new_tokens, g.temperature, g.top_p)


def _base_config() -> dict[str, Any]:
    return {
        "output_type": "generate_until",
        "dataset_path": "json",
        "test_split": "test",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{target}}",
        "generation_kwargs": {"until": [], "max_gen_toks": 256, "do_sample": False, "temperature": 0.0},
        "metadata": {"version": 1.0, "generator": "cai-bench"},
    }


def _doc(p: Any) -> dict[str, str]:
    return {
        "id": p.id,
        "prompt": p.prompt,
        "reference": p.reference or "",
        "principle_id": p.principle_id or "",
        "category": p.category or "",
        "expect": p.expect,
        "target": p.reference or "",
    }


def export_lm_eval(
    tasks: Sequence[Task],
    out_dir: Path,
    *,
    subsets: Mapping[str, Sequence[str]] | None = None,
    name_suffix: str = "",
    with_metric: bool = True,
    limit: int | None = None,
    hhh_path: str | Path | None = None,
) -> dict[str, str]:
    """Write an lm-eval task folder for `tasks`; returns {task_id: lm-eval task name}.

    `subsets` restricts a task to those prompt ids (in the task's order);
    `limit` keeps the first N prompts or items of each task;
    `name_suffix` ([a-z0-9_]*) keeps several exports in one folder apart;
    `with_metric=False` leaves metrics out of generate_until tasks (for `predict_only` generation).
    A multiple_choice task's items are read from its item source (`hhh_path`: where the HHH
    data is, else it is found as for `run`; never downloaded: `cai-bench data fetch hhh`).
    """
    if name_suffix and not ID_RE_SUFFIX.fullmatch(name_suffix):
        raise UserError(f"name_suffix {name_suffix!r} must match [a-z0-9_]*")
    if not tasks:
        raise UserError("export_lm_eval: no tasks to export")
    out = output_dir(Path(out_dir))
    generated = [t for t in tasks if t.output_type == GENERATE_UNTIL]
    names: dict[str, str] = {}
    if generated:
        names.update(_export_generate_until(generated, out, subsets, name_suffix, with_metric, limit))
    chosen = [t for t in tasks if t.output_type == MULTIPLE_CHOICE]
    if chosen:
        names.update(_export_multiple_choice(chosen, out, name_suffix, limit, hhh_path))
    return {t.id: names[t.id] for t in tasks}


def _export_multiple_choice(tasks: Sequence[Task], out: Path, name_suffix: str, limit: int | None,
                            hhh_path: str | Path | None) -> dict[str, str]:
    """Each multiple_choice task as lm-eval's `multiple_choice` task over its source's items."""
    from cai_bench.tasks.hhh import load_hhh, write_view_lm_eval

    items = load_hhh(hhh_path)  # every item source today is the HHH file (a view of it)
    names: dict[str, str] = {}
    for task in tasks:
        names[task.id] = f"{task.id}{name_suffix}"
        write_view_lm_eval(items[:limit] if limit else items, out, task.items or "", names[task.id])
    return names


def _export_generate_until(tasks: Sequence[Task], out: Path, subsets: Mapping[str, Sequence[str]] | None,
                           name_suffix: str, with_metric: bool, limit: int | None) -> dict[str, str]:
    """The generate_until tasks: shared base, one YAML + jsonl each, and their group."""
    atomic_write_text(out / BASE_FILE, _dump(_base_config()))
    if with_metric:
        atomic_write_text(out / METRIC_SHIM, _SHIM_TEXT)
    names: dict[str, str] = {}
    any_similarity = False
    for task in tasks:
        prompts = task.prompts
        if subsets is not None and task.id in subsets:
            wanted = list(subsets[task.id])
            known = {p.id for p in prompts}
            missing = [w for w in wanted if w not in known]
            if missing:
                raise UserError(f"task {task.id!r} has no prompt(s) {missing[:5]} (asked for in subsets)")
            keep = set(wanted)
            prompts = [p for p in prompts if p.id in keep]
            if not prompts:
                raise UserError(f"task {task.id!r}: the subset is empty")
        if limit:
            prompts = prompts[:limit]
        name = f"{task.id}{name_suffix}"
        data_file = out / f"{name}.jsonl"
        atomic_write_text(data_file, "".join(json.dumps(_doc(p), ensure_ascii=False) + "\n" for p in prompts))
        cfg: dict[str, Any] = {
            "include": BASE_FILE,
            "task": name,
            "output_type": task.output_type,  # generate_until, as in the base: said per task for readers
            "dataset_kwargs": {"data_files": {"test": str(data_file)}},
            "generation_kwargs": _gen_kwargs(task),
        }
        if with_metric:
            if task.has_references:
                any_similarity = True
                complete = all(p.reference for p in prompts)
                cfg["process_results"] = _Function("cai_bench_metric.similarity_results")
                cfg["metric_list"] = [
                    {"metric": "similarity", "aggregation": "mean" if complete else "nanmean", "higher_is_better": True}
                ]
            else:
                cfg["process_results"] = _Function("cai_bench_metric.length_results")
                cfg["metric_list"] = [{"metric": "response_words", "aggregation": "mean", "higher_is_better": True}]
        cfg["metadata"] = {"version": 1.0, "cai_bench_task": task.id, "constitution": task.constitution,
                           "culture": task.culture}
        atomic_write_text(out / f"{name}.yaml", _dump(cfg))
        names[task.id] = name
    group: dict[str, Any] = {"group": f"{GROUP}{name_suffix}", "task": list(names.values())}
    if with_metric:
        metrics = ["similarity"] if any_similarity else []
        if any(not t.has_references for t in tasks):
            metrics.append("response_words")
        group["aggregate_metric_list"] = [
            {"metric": m, "aggregation": "mean", "weight_by_size": True} for m in metrics
        ]
    group["metadata"] = {"version": 1.0}
    atomic_write_text(out / f"{GROUP}{name_suffix}.yaml", _dump(group))
    return names
