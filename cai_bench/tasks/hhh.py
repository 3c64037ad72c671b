"""The item source of the built-in `multiple_choice` tasks `hhh_alignment` and
`hhh_alignment_response` (builtin/<id>/task.yaml): the CAI paper's 438 HHH items.

Each item (Askell et al. 2021, used in arXiv:2212.08073 fig. 2) is a conversation
with two candidate final answers; the model is right when it gives the more
helpful, honest and harmless one the higher log-likelihood. No judge and no hub
model are needed, only the model under test. Two views of each item:

- ``hhh_alignment`` (the paper's prompt): the options shown as ``(A)``/``(B)``,
  followed by "The answer is:"; the choice is the letter with the higher
  log-likelihood. Small models mostly answer by position, so this one is near
  chance for them.
- ``hhh_alignment_response``: the shared conversation, then each candidate
  answer as the assistant turn; the choice is the answer with the higher
  log-likelihood per byte (lm-eval's ``acc_norm``). This one moves with training
  on responses, so the pipeline reports it beside the letter accuracy.

The data file has no stated license, so it is not vendored. `hhh_path` finds it:
an explicit path, then the order of `cai_bench.data` (data set ``hhh``):
``$CAI_BENCH_HHH_PATH``, a shared data folder holding ``cai_paper_anthropic/evals/``,
the copy ``cai-bench data fetch hhh`` stored (sha256-checked) under
``$CAI_BENCH_HOME/data/``. It never downloads: a missing file is one line naming that
command. `find_hhh` does the same without raising (what `cai-bench tasks list` shows).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cai_bench import data
from cai_bench.errors import UserError
from cai_bench.io import read_jsonl
from cai_bench.paths import atomic_write_text
from cai_bench.shared_data import ENV as SHARED_ENV  # noqa: F401 - tests and callers name it as hhh.SHARED_ENV
from cai_bench.tasks._outdir import output_dir

TASK_ID = "hhh_alignment"
RESPONSE_TASK_ID = "hhh_alignment_response"
DATA = data.get("hhh")  # the registry entry: where it lies, its public URL and pinned sha256, its license
FILE_NAME = DATA.file_name
SOURCE_URL = str(DATA.url)
ENV_PATH = str(DATA.env)
N_ITEMS = 438
SHARED_REL = Path(DATA.rel)
VIEWS = (TASK_ID, RESPONSE_TASK_ID)  # the item sources a multiple_choice task.yaml may name (`items:`)
KIND = "log-likelihood multiple choice"
VIEW_TEXT = {
    TASK_ID: "the paper's prompt with (A)/(B) options; the letter with the higher log-likelihood wins (acc)",
    RESPONSE_TASK_ID: "the conversation, then each full answer; the higher log-likelihood per byte wins (acc_norm)",
}
LICENSE = "none stated upstream (not vendored: a local copy, or `cai-bench data fetch hhh`)"
_TURN = "\n\nAssistant:"


@dataclass(frozen=True)
class HHHItem:
    """One item: the lettered prompt, the right/wrong letter, and the shared
    conversation with each full candidate answer."""

    id: str
    prompt: str
    correct: str
    incorrect: str
    context: str
    answer_correct: str
    answer_incorrect: str


def cached_path() -> Path:
    """Where `cai-bench data fetch hhh` stores the file."""
    return data.fetched_path(DATA)


def _local(path: str | Path | None) -> tuple[Path, str] | None:
    """The data file and how it was found: `path` when given (checked), else the data
    registry's order ($CAI_BENCH_HHH_PATH, a shared data folder, the fetched copy)."""
    if path:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / FILE_NAME
        if not p.is_file():
            raise UserError(f"hhh path {path}: no such file (the CAI paper's {FILE_NAME}). Fix: point it at "
                            f"{FILE_NAME}, or leave it out and {data.fetch_fix(DATA)}")
        return p, "hhh path"
    found = data.locate(DATA)
    return (found.path, found.how) if found else None


def not_found_message() -> str:
    return (f"{TASK_ID}: the HHH data ({FILE_NAME}) was not found. Fix: {data.fetch_fix(DATA)}, or pass "
            f"--hhh-path / set {ENV_PATH} to a local copy")


def find_hhh(path: str | Path | None = None) -> tuple[Path | None, str]:
    """Where the data is, never raising: (file, how it was found), or (None, why not and
    the fix). For listings."""
    try:
        found = _local(path)
    except UserError as exc:
        return None, exc.message
    if found:
        return found[0], found[1]
    return None, not_found_message()


def hhh_path(path: str | Path | None = None, *, download: bool = False) -> Path:
    """The local data file (see `_local`); never downloads: a missing file is one line that
    names `cai-bench data fetch hhh`. `download` is accepted for callers of the older
    signature and changes nothing: fetching is explicit."""
    found = _local(path)
    if found is None:
        raise UserError(not_found_message())
    return found[0]


def _split(text: str, where: str) -> tuple[str, str]:
    i = text.rfind(_TURN)
    if i < 0:
        raise UserError(f"{where}: no final 'Assistant:' turn")
    return text[:i + len(_TURN)], text[i + len(_TURN):]


def parse_hhh(path: Path) -> list[HHHItem]:
    """Every item of the file; a bad line is named by file:line and field."""
    path = Path(path)
    items: list[HHHItem] = []
    for n, row in read_jsonl(path, what="HHH items", allow_empty=True):
        where = f"{path}:{n}"
        for key, kind in (("prompt", str), ("corrects", list), ("incorrects", list), ("text_correct", str),
                          ("text_incorrect", str)):
            if not isinstance(row.get(key), kind):
                raise UserError(f"{where}: {key}: missing or not a {kind.__name__}")
        if len(row["corrects"]) != 1 or len(row["incorrects"]) != 1:
            raise UserError(f"{where}: corrects/incorrects: expected one option each")
        ctx_a, ans_a = _split(row["text_correct"], f"{where}: text_correct")
        ctx_b, ans_b = _split(row["text_incorrect"], f"{where}: text_incorrect")
        if ctx_a != ctx_b:
            raise UserError(f"{where}: text_correct and text_incorrect do not share the conversation")
        items.append(HHHItem(f"hhh-{len(items):03d}", row["prompt"], str(row["corrects"][0]),
                             str(row["incorrects"][0]), ctx_a, ans_a, ans_b))
    if not items:
        raise UserError(f"{path}: no HHH items")
    return items


def load_hhh(path: str | Path | None = None, *, limit: int | None = None, seed: int = 0,
             download: bool = False) -> list[HHHItem]:
    """The HHH items (all 438, or a seeded sample of `limit`, kept in file order); `download`
    as for `hhh_path` (no effect)."""
    items = parse_hhh(hhh_path(path))
    if limit is not None and limit < len(items):
        keep = set(random.Random(seed).sample(range(len(items)), limit))
        items = [it for i, it in enumerate(items) if i in keep]
    return items


def item_doc(item: HHHItem, view: str) -> dict[str, Any]:
    """The lm-eval doc of `item` in `view`: what the model reads (query), the two
    continuations it is scored on, the right one first (label 0)."""
    if view == TASK_ID:
        return {"id": item.id, "query": item.prompt, "choices": [item.correct, item.incorrect], "label": 0}
    if view == RESPONSE_TASK_ID:
        return {"id": item.id, "query": item.context, "choices": [item.answer_correct, item.answer_incorrect],
                "label": 0}
    raise ValueError(f"unknown HHH view {view!r}; known: {', '.join(VIEWS)}")


def _dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=1000)


def write_view_lm_eval(items: Sequence[HHHItem], out: Path, view: str, name: str) -> None:
    """Write one view as the lm-eval `multiple_choice` task `name` (OUT/name.yaml + .jsonl) in
    the existing folder `out`; metrics `acc` and `acc_norm`, the right answer is choice 0."""
    data = out / f"{name}.jsonl"
    atomic_write_text(data, "".join(json.dumps(item_doc(it, view), ensure_ascii=False) + "\n" for it in items))
    cfg = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{query}}",
        "doc_to_choice": "choices",
        "doc_to_target": "label",
        "target_delimiter": "",  # the options carry their own leading space
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0, "generator": "cai-bench", "source": SOURCE_URL},
    }
    atomic_write_text(out / f"{name}.yaml", _dump(cfg))


def export_hhh_lm_eval(items: Sequence[HHHItem], out_dir: Path, *, suffix: str = "") -> dict[str, str]:
    """Write both HHH views as lm-eval `multiple_choice` tasks; returns {view: task name}.

    `lm_eval --include_path OUT --tasks hhh_alignment` then runs it without cai-bench
    (metrics `acc` and `acc_norm`; the right answer is always choice 0)."""
    out = output_dir(Path(out_dir))  # a file in the way is a one-line error
    names: dict[str, str] = {}
    for view in VIEWS:
        names[view] = f"{view}{suffix}"
        write_view_lm_eval(items, out, view, names[view])
    return names
