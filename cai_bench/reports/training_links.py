"""From a held-out answer to the training data behind it: for each experiment
variant, the SFT examples it was trained on that are nearest (embedding
similarity, the bundled all-MiniLM through `cai_bench.embeddings`) to each of its
SFT and DPO answers on its held-out prompts, with their principle and revision.

Computed at report time from the files each variant's pipeline record points at
(`<data dir>/sft/train.jsonl`, the task stage's `train_prompts.jsonl` (the
variant's `task/` folder, a link into the experiment's shared stages), and for
generated data `generated/records.jsonl`, whose principle is the one the critique
used); when those files are not here (a report regenerated on another machine) the
report says so instead of linking.

The embedder is passed in (`cai_bench.embeddings.embed`, by `cai-bench report`):
the reports package never imports model code, so it still reads a store on a
machine without torch, where the page says the answers were not linked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cai_bench.errors import MissingDependency
from cai_bench.results.loops import LoopRecord

TOP_K = 3
Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass
class Example:
    anchor: str  # the id of its row in samples.html
    prompt: str
    principle: str
    revision: str  # the answer the model was trained on


@dataclass
class TrainingLinks:
    sets: dict[str, list[Example]] = field(default_factory=dict)  # "data dir (variants)" -> linked examples
    links: dict[tuple[str, str, str], list[tuple[str, float]]] = field(default_factory=dict)  # (fp, task, prompt)
    missing: list[str] = field(default_factory=list)  # variants whose training files are not here, and why


def data_dir(loop: LoopRecord) -> Path | None:
    """The data stage folder a variant trained on: the SFT provenance's, else `<out>/data`."""
    prov = ((loop.provenance or {}).get("sft") or {}).get("data") or {}
    if prov.get("dir"):
        return Path(str(prov["dir"]))
    out = (loop.config or {}).get("out")
    return Path(str(out)) / "data" if out else None


def _jsonl(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                value = json.loads(line)
            except ValueError:
                continue  # a partial line from a kill: the rest still links
            if isinstance(value, dict):
                rows.append(value)
    return rows


def task_prompts(loop: LoopRecord, folder: Path) -> Path | None:
    """The task stage's train prompts of a variant: `<out>/task/` (the variant's folder), else
    beside the data folder (a lone pipeline's layout)."""
    out = (loop.config or {}).get("out")
    for p in ([Path(str(out)) / "task"] if out else []) + [folder.parent / "task"]:
        if (p / "train_prompts.jsonl").is_file():
            return p / "train_prompts.jsonl"
    return None


def read_examples(folder: Path, prompts: Path | None = None) -> list[tuple[str, str, str]]:
    """(prompt, principle, revision) of every SFT training example in a data stage folder.
    Principle: the critique's (generated data), else the prompt's in the task's train split
    (`prompts`, default: `task/train_prompts.jsonl` beside the data folder)."""
    principle: dict[str, str] = {}
    prompts = prompts or folder.parent / "task" / "train_prompts.jsonl"
    if prompts.is_file():
        principle.update({str(r.get("prompt")): str(r.get("principle_id") or "") for r in _jsonl(prompts)})
    generated = folder / "generated" / "records.jsonl"
    if generated.is_file():
        principle.update({str(r.get("init_prompt")): str(r.get("principle_id") or "") for r in _jsonl(generated)})
    out = []
    for r in _jsonl(folder / "sft" / "train.jsonl"):
        msgs = r.get("messages") or []
        user = next((m.get("content", "") for m in msgs if m.get("role") == "user"), "")
        answer = next((m.get("content", "") for m in msgs if m.get("role") == "assistant"), "")
        out.append((str(user), principle.get(str(user), ""), str(answer)))
    return out


def nearest(queries: np.ndarray, candidates: np.ndarray, k: int = TOP_K) -> list[list[tuple[int, float]]]:
    """Per query row, the `k` candidate rows of highest cosine (rows L2-normalised), best
    first, ties by index; similarity rounded to 3 places so reports regenerate byte for byte."""
    if len(candidates) == 0:
        return [[] for _ in range(len(queries))]
    sims = np.round(np.asarray(queries, dtype=np.float64) @ np.asarray(candidates, dtype=np.float64).T, 3)
    out = []
    for row in sims:
        order = np.lexsort((np.arange(len(row)), -row))[:k]
        out.append([(int(i), float(row[i])) for i in order])
    return out


NO_EMBEDDER = ("answers not linked to training prompts: this report was written without the sentence embedder "
               "(`cai-bench report` links them where sentence-transformers is installed)")


def training_links(samples: pd.DataFrame, variants: Sequence[tuple[str, LoopRecord]],
                   embed: Embed | None) -> TrainingLinks:
    """Links for the SFT and DPO answers of each (variant name, its loop) on its held-out task;
    `embed` maps texts to L2-normalised rows (None: nothing linked, and the page says why)."""
    links = TrainingLinks()
    dirs: dict[str, list[str]] = {}
    loops_of: dict[str, list[LoopRecord]] = {}
    for name, loop in variants:
        folder = data_dir(loop)
        train = folder / "sft" / "train.jsonl" if folder else None
        if train is None or not train.is_file():
            where = str(train) if train else "no data folder in its pipeline record"
            links.missing.append(f"{name}: training data not found ({where}); a report regenerated away from the "
                                 "experiment's folders cannot link answers to training prompts")
            continue
        dirs.setdefault(str(folder), []).append(name)
        loops_of.setdefault(str(folder), []).append(loop)
    if not dirs:
        return links
    if embed is None:
        links.missing.append(NO_EMBEDDER)
        return links
    try:
        return _link(links, dirs, loops_of, samples, embed)
    except MissingDependency as exc:  # no sentence-transformers here: the report still writes
        links.missing.append(f"answers not linked to training prompts: {exc}")
        links.links.clear()
        links.sets.clear()
        return links


def _link(links: TrainingLinks, dirs: dict[str, list[str]], loops_of: dict[str, list[LoopRecord]],
          samples: pd.DataFrame, embed: Embed) -> TrainingLinks:
    for k, (folder, names) in enumerate(sorted(dirs.items())):
        examples = read_examples(Path(folder), task_prompts(loops_of[folder][0], Path(folder)))
        if not examples:
            links.missing.append(f"{', '.join(names)}: {folder}/sft/train.jsonl holds no training example")
            continue
        cand = embed([f"{p}\n{r}" for p, _, r in examples])
        used: dict[int, Example] = {}
        for loop in loops_of[folder]:
            fps = {loop.fingerprints.get("sft"), loop.fingerprints.get("dpo")} - {None, ""}
            mine = samples[samples["fingerprint"].isin(fps) & (samples["task_id"] == loop.eval_task)]
            mine = mine.sort_values(["fingerprint", "prompt_id"], kind="mergesort")
            if mine.empty:
                continue
            texts = [f"{p or ''}\n{r or ''}" for p, r in zip(mine["prompt"], mine["response"])]
            for key, hits in zip(zip(mine["fingerprint"], mine["task_id"], mine["prompt_id"]),
                                 nearest(embed(texts), cand)):
                row = []
                for i, sim in hits:
                    ex = used.setdefault(i, Example(f"train-{k}-{i}", *examples[i]))
                    row.append((ex.anchor, sim))
                links.links[tuple(map(str, key))] = row
        links.sets[f"{folder} ({', '.join(names)})"] = [used[i] for i in sorted(used)]
    return links
