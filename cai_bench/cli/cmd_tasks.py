"""`cai-bench tasks list|show|new|export`: thin wrappers over cai_bench.tasks.

`tasks_app` is the Typer sub-app; other modules may add commands to it
(e.g. `tasks synthesize` from cmd_generate.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from cai_bench.console import safe as escape  # markup-escaped, control characters made visible

from cai_bench.cli._app import app
from cai_bench.cli._options import LIST_FORMAT, ListFormat
from cai_bench.console import console

if TYPE_CHECKING:
    from cai_bench.tasks import Task

tasks_app = typer.Typer(help="List, show, create and export constitution tasks.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")

_TASK_DIRS = typer.Option(None, "--tasks-dir", "-T", help="Extra folder of task folders (repeatable).")
_CONST_DIRS = typer.Option(None, "--constitutions", "-C", help="Extra folder of constitution files (repeatable); "
                            "`tasks new` copies a constitution found only here into the task folder.")


_HHH_PATH = typer.Option(None, "--hhh-path", help="The CAI paper's 438HHHEvaluations.jsonl for hhh_alignment "
                         "(default: $CAI_BENCH_HHH_PATH, a shared data folder, `cai-bench data fetch hhh`'s copy).")


def _extra(tdirs: Optional[List[Path]], cdirs: Optional[List[Path]]) -> list[Path]:
    return [*(tdirs or ()), *(cdirs or ())]


def _items_status(hhh_path: Optional[Path]) -> tuple[str, str]:
    """(item count, where the data is) of the multiple_choice tasks' item source, found offline,
    or ("?", how to get it): a listing never downloads."""
    from cai_bench.errors import UserError
    from cai_bench.tasks.hhh import find_hhh, parse_hhh

    path, how = find_hhh(hhh_path)
    if path is None:
        return "?", how
    try:
        return str(len(parse_hhh(path))), f"{path} ({how})"
    except UserError as exc:
        return "?", f"unreadable: {exc.message}"


def _kind_text(output_type: str) -> str:
    """A task's output_type, saying how a multiple_choice one is decided."""
    return f"{output_type} (log-likelihood)" if output_type == "multiple_choice" else output_type


@tasks_app.command("list")
def list_cmd(tdirs: Optional[List[Path]] = _TASK_DIRS, cdirs: Optional[List[Path]] = _CONST_DIRS,
             hhh_path: Optional[Path] = _HHH_PATH, fmt: ListFormat = LIST_FORMAT) -> None:
    """List tasks (built-ins, --tasks-dir, $CAI_BENCH_PATH, $CAI_BENCH_HOME/tasks) with their kind
    (output_type). A multiple_choice task such as hhh_alignment reads its items from a data file that
    is not bundled: its location says where that was found."""
    from cai_bench.tasks import list_tasks

    from cai_bench.console import Col, fitted_table, print_records, print_table

    status: tuple[str, str] | None = None
    records = []
    for t in list_tasks(_extra(tdirs, cdirs)):
        if t.is_multiple_choice:
            status = status or _items_status(hhh_path)
            n, refs, where = (int(status[0]) if status[0].isdigit() else None), True, status[1]
        else:
            n, refs, where = len(t.prompts), t.has_references, str(t.path or "")
        records.append(dict(id=t.id, constitution=t.constitution, culture=t.culture, kind=t.output_type,
                            prompts=n, references=refs, location=where))
    if fmt is not ListFormat.table:
        print_records(records, fmt.value)
        return
    rows = [[r["id"], r["constitution"], r["culture"], _kind_text(r["kind"]), "?" if r["prompts"] is None
             else str(r["prompts"]), "yes" if r["references"] else "no", r["location"]] for r in records]
    cols = [Col("id", keep=True), Col("constitution", keep=True), Col("culture", keep=True, drop=3),
            Col("kind", drop=4, min_text=10), Col("prompts", keep=True), Col("references", keep=True, drop=2),
            Col("location", drop=1, min_text=20)]
    print_table(fitted_table(cols, rows))


@tasks_app.command("show")
def show_cmd(
    task: str = typer.Argument(..., help="Task id or task folder."),
    limit: int = typer.Option(10, "--limit", "-n", min=0, help="Prompts to show."),
    tdirs: Optional[List[Path]] = _TASK_DIRS,
    cdirs: Optional[List[Path]] = _CONST_DIRS,
    hhh_path: Optional[Path] = _HHH_PATH,
) -> None:
    """Show a task's kind, settings and its first prompts (or items)."""
    from cai_bench.tasks import load_task

    t = load_task(task, _extra(tdirs, cdirs))
    if t.is_multiple_choice:
        _show_choices(t, limit, hhh_path)
        return
    g = t.generation
    console.print(f"[bold]{escape(t.id)}[/bold]: constitution {t.constitution}, culture {escape(t.culture)}, "
                  f"{len(t.prompts)} prompts, references: {'yes' if t.has_references else 'no'}")
    console.print(f"output_type: {t.output_type} (answers generated, then scored by the scorers)")
    console.print(f"generation: max_new_tokens={g.max_new_tokens} temperature={g.temperature} top_p={g.top_p}")
    for label, value in (("description", t.description), ("source", t.source), ("license", t.license)):
        if value:
            console.print(f"{label}: {escape(value)}")
    if t.analyses:
        console.print(f"analyses: {', '.join(t.analyses)}")
    for key, m in t.metrics.items():
        said = [f"role={m.role}" if m.role else "", "" if m.composite is None else f"composite={str(m.composite).lower()}"]
        console.print(f"metric {escape(key)}: {' '.join(x for x in said if x)}")
    for p in t.prompts[:limit]:
        tags = " ".join(f"{k}={v}" for k, v in (("principle", p.principle_id), ("category", p.category),
                                                 ("expect", p.expect)) if v)
        console.print(f"[bold]{escape(p.id)}[/bold] {escape(tags)}", highlight=False)
        console.print(f"  prompt: {escape(_short(p.prompt, 300))}", highlight=False)
        if p.reference:
            console.print(f"  reference: {escape(_short(p.reference, 300))}", highlight=False)
    if len(t.prompts) > limit:
        console.print(f"... {len(t.prompts) - limit} more (--limit N)")


def _show_choices(t: "Task", limit: int, hhh_path: Optional[Path]) -> None:
    """A multiple_choice task (hhh_alignment or its response view): what it measures, where its
    data is, a few items."""
    from cai_bench.tasks.hhh import KIND, LICENSE, SOURCE_URL, VIEW_TEXT, hhh_path as locate, item_doc, parse_hhh

    view = t.items or ""
    path = locate(hhh_path)  # missing: one line naming `cai-bench data fetch hhh`
    items = parse_hhh(path)
    console.print(f"[bold]{escape(t.id)}[/bold]: output_type {t.output_type}: {KIND}, {len(items)} items, scored by "
                  "the model under test alone (no judge, no generation)", highlight=False)
    console.print(f"constitution {t.constitution}, culture {escape(t.culture)}, items: {escape(view)}", highlight=False)
    console.print(f"view: {escape(VIEW_TEXT[view])}", highlight=False)
    console.print(f"data: {escape(str(path))}", highlight=False)
    console.print(f"source: Askell et al. 2021 via the CAI paper (arXiv:2212.08073), {escape(SOURCE_URL)}",
                  highlight=False)
    console.print(f"license: {escape(LICENSE)}", highlight=False)
    console.print(f"run: cai-bench run -t {t.id} -c CHECKPOINT   export: cai-bench tasks export {t.id} --out DIR",
                  highlight=False)
    for it in items[:limit]:
        doc = item_doc(it, view)
        console.print(f"[bold]{escape(it.id)}[/bold]", highlight=False)
        console.print(f"  prompt (end): {escape(_tail(doc['query'], 300))}", highlight=False)
        console.print(f"  right: {escape(_short(doc['choices'][0], 200))}", highlight=False)
        console.print(f"  wrong: {escape(_short(doc['choices'][1], 200))}", highlight=False)
    if len(items) > limit:
        console.print(f"... {len(items) - limit} more (--limit N)")


def _tail(text: str, n: int) -> str:
    """The end of a long prompt (where the question and the options are), on one line."""
    text = " ".join(text.split())
    return text if len(text) <= n else "…" + text[-(n - 1):]


def _short(text: str, n: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


@tasks_app.command("new")
def new_cmd(
    task_id: str = typer.Argument(..., metavar="ID", help="New task id ([a-z0-9_]+)."),
    constitution: str = typer.Option(..., "--constitution", "-c", help="Constitution id or YAML file."),
    prompts: Path = typer.Option(..., "--prompts", "-p", help="Prompts file (.jsonl or .csv)."),
    prompt_field: str = typer.Option("prompt", help="Column holding the prompt text."),
    reference_field: Optional[str] = typer.Option(None, help="Column holding the reference answer."),
    principle_field: Optional[str] = typer.Option(None, help="Column holding the principle id."),
    id_field: str = typer.Option("id", help="Column holding the prompt id (row number if absent)."),
    culture: Optional[str] = typer.Option(None, help="Culture label (default: the constitution's)."),
    description: str = typer.Option("", help="One-line description."),
    max_new_tokens: Optional[int] = typer.Option(None, min=1, help="The task's default generation length "
                                                 "(what run and generate use unless told otherwise; default 256)."),
    dest: Optional[Path] = typer.Option(None, "--dir", help="Task root folder (default $CAI_BENCH_HOME/tasks)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing task with this id."),
    cdirs: Optional[List[Path]] = _CONST_DIRS,
) -> None:
    """Create a user task from a constitution and a prompts file.

    A constitution found only through --constitutions is copied into the task
    folder, so the task still loads in later commands run without that flag.
    """
    from cai_bench.constitutions import load_constitution, looks_like_path
    from cai_bench.errors import UserError
    from cai_bench.tasks import GenerationDefaults, Task, check_task_id, read_prompts_file, write_user_task

    try:
        check_task_id(task_id)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    c = load_constitution(constitution, cdirs or ())
    cfile = c.path if looks_like_path(constitution) else None
    records = read_prompts_file(prompts, prompt_field=prompt_field, reference_field=reference_field,
                                principle_field=principle_field, id_field=id_field)
    task = Task(id=task_id, constitution=c.id, culture=culture or c.culture, description=description,
                source=str(prompts), prompts=records, generation=GenerationDefaults(**({} if max_new_tokens is None else {"max_new_tokens": max_new_tokens})))
    path = write_user_task(task, dest, cfile, overwrite=force, constitution_dirs=cdirs or ())
    console.print(f"wrote task {task.id!r} ({len(records)} prompts, constitution {c.id}) to {escape(str(path))}")
    _warn_references(records, prompts, reference_field)


def _warn_references(records: list, prompts: Path, reference_field: Optional[str]) -> None:
    """Say which scorers will have nothing to compare with when prompts lack references."""
    from cai_bench.console import err_console
    from cai_bench.harness.scorers import scorer_class, scorer_ids

    missing = sum(1 for r in records if not r.reference)
    if not missing:
        return
    needs, others = [], []
    for sid in scorer_ids():
        try:
            (needs if scorer_class(sid).needs_reference else others).append(sid)
        except ImportError:
            continue
    if not needs:
        return
    who = ", ".join(needs)
    if missing == len(records):
        where = (f"column {reference_field!r} is empty" if reference_field
                 else "no 'reference' column; --reference-field COLUMN names another")
        err_console.print(
            f"[bold yellow]warning:[/bold yellow] {escape(str(prompts))} has no reference answers ({escape(where)}): "
            f"{who} will be n/a on every prompt, having nothing to compare with. Offline with the bundled models "
            f"that leaves nothing to score; {', '.join(others)} need no reference (a server, an API key or a "
            "hub model). See docs/constitutions_and_tasks.md.", highlight=False)
    else:
        err_console.print(f"[yellow]note:[/yellow] {missing} of {len(records)} prompts have no reference answer: "
                          f"{who} will be n/a on those.", highlight=False)


@tasks_app.command("export")
def export_cmd(
    args: Optional[List[str]] = typer.Argument(None, metavar="DIR [IDS]...",
                                     help="Output folder, then task ids (default: all); with --out, only task ids."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (then every argument is a task id)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N prompts of each task."),
    no_metric: bool = typer.Option(False, "--no-metric", help="Leave metrics out (predict-only use)."),
    tdirs: Optional[List[Path]] = _TASK_DIRS,
    cdirs: Optional[List[Path]] = _CONST_DIRS,
    hhh_path: Optional[Path] = _HHH_PATH,
) -> None:
    """Export tasks as an lm-eval task folder (run with `lm_eval --include_path DIR --tasks ID`).

    Each task is written as lm-eval's task of its kind: generate_until tasks with the cai_bench group,
    multiple_choice tasks (hhh_alignment, hhh_alignment_response) as standalone multiple_choice tasks
    (metrics acc and acc_norm). With no ids, every task is exported, the multiple_choice ones when
    their data is found here."""
    from cai_bench.errors import UserError
    from cai_bench.tasks import export_lm_eval, list_tasks, load_task
    from cai_bench.tasks.hhh import find_hhh

    args = list(args or [])
    if out is None:
        if not args:
            raise UserError("tasks export: give the output folder (DIR, or --out DIR)")
        out_dir, given = Path(args[0]), args[1:]
    else:
        out_dir, given = out, args
    extra = _extra(tdirs, cdirs)
    if given:
        tasks = [load_task(i, extra) for i in given]
    else:
        tasks = list_tasks(extra)
        found, why = find_hhh(hhh_path)
        if found is None and any(t.is_multiple_choice for t in tasks):
            left = [t.id for t in tasks if t.is_multiple_choice]
            console.print(f"[yellow]note:[/yellow] {', '.join(left)} left out: {escape(why)}", highlight=False)
            tasks = [t for t in tasks if not t.is_multiple_choice]
    names = export_lm_eval(tasks, out_dir, limit=limit, with_metric=not no_metric, hhh_path=hhh_path)
    where = escape(str(out_dir.resolve()))
    console.print(f"exported {len(names)} task(s) to {where}: {', '.join(names.values())}")
    gen = [names[t.id] for t in tasks if not t.is_multiple_choice]
    chosen = [names[t.id] for t in tasks if t.is_multiple_choice]
    if gen:
        console.print(f"run: lm_eval --model hf --model_args pretrained=MODEL --include_path {where} "
                      f"--tasks {gen[0]} --apply_chat_template")
    if chosen:
        console.print(f"run: lm_eval --model hf --model_args pretrained=MODEL --include_path {where} "
                      f"--tasks {','.join(chosen)}   (multiple_choice: acc, acc_norm; no chat template, "
                      "as in the paper)")
