"""The critique -> revision pipeline (the first half of Constitutional AI).

For each prompt one chat, in the model's own chat template:
user prompt -> initial response; critique request -> critique; revision
request (+ a "no meta-commentary" suffix) -> revision. Prompts run in chunks,
each step batched over the chunk; finished records are appended at once, so a
killed run resumes where it stopped. A prompt whose request fails for good (a
context too long, a content filter, an empty reply, faults past the retry
budget) is listed in `errors.jsonl` and left out; the others go on, and a
re-run retries it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from cai_bench.defaults import GENERATION
from cai_bench.errors import UserError
from cai_bench.generation.chat_settings import ChatSettings
from cai_bench.models.chat import ChatModel, GenParams
from cai_bench.models.registry import is_local_kind
from cai_bench.generation.demonstrations import (
    ANSWER_REQUEST,
    answer_request,
    demonstration_messages,
    demonstration_texts,
    load_demonstrations,
)
from cai_bench.generation.cleaning import DROP_REASONS, TEXT_RULES, clean_text, drop_reason
from cai_bench.generation.export import write_dataset
from cai_bench.generation.prompts import PromptItem, default_max_new_tokens, load_prompts
from cai_bench.generation.records import CAIRecord
from cai_bench.generation.selection import Choice, select_principles
from cai_bench.generation.store import RecordWriter, read_records
from cai_bench.paths import atomic_write_text

log = logging.getLogger(__name__)

REVISION_SUFFIX = " Do not provide meta-commentary; respond as the assistant would."


class GenerateConfig(ChatSettings):
    """Everything `cai-bench generate` takes."""

    constitution: str
    prompts: str
    model: str
    out: Path
    selection: Literal["random", "contextual"] = GENERATION.selection
    n: int | None = None
    seed: int = GENERATION.seed
    top_k: int = GENERATION.top_k
    few_shot: bool = True
    max_new_tokens: int | None = None  # None: the prompts task's own default (256 for a prompts file)
    temperature: float = GENERATION.temperature
    top_p: float = GENERATION.top_p
    ascii: bool = False
    revision_suffix: str = REVISION_SUFFIX
    keep_truncated: bool = False
    test_size: float = GENERATION.test_size
    answer_only: bool = False  # the revision is asked in a fresh turn: principle + request, the answer only
    demonstrations: int = Field(0, ge=0)  # worked answer-only examples from the packaged GPT-4o data, shown first
    retries: int = Field(0, ge=0)  # second pass: re-ask the revision of a row the quality gate drops, sampled
    retry_temperature: float = Field(0.7, gt=0.0)

    def identity(self, generator: dict, constitution_id: str) -> dict:
        """Settings that must match for a re-run to reuse finished records. The
        generator's fingerprint covers the endpoint of a served model (--base-url,
        else the environment); the texts are in each record's `content_hash`. The
        engine of a local checkpoint is part of it (HF and vLLM answers differ even
        greedy); "hf" adds nothing, so folders written before engines still match."""
        engine = {"engine": self.engine} if self.engine != "hf" and is_local_kind(generator.get("kind", "")) else {}
        # set only when used, so folders written before these settings still match
        extra = {k: v for k, v in (("answer_only", self.answer_only), ("demonstrations", self.demonstrations),
                                   ("retries", self.retries)) if v}
        if self.retries:
            extra["retry_temperature"] = self.retry_temperature
        return {**engine, **extra, "constitution": constitution_id, "generator": generator.get("fingerprint"),
                "endpoint": generator.get("endpoint"),
                "selection": self.selection, "seed": self.seed, "top_k": self.top_k, "few_shot": self.few_shot,
                "max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_p": self.top_p,
                "ascii": self.ascii, "revision_suffix": self.revision_suffix}


class GenerateResult(BaseModel):
    out: Path
    prompts: int
    generated_now: int
    reused: int
    kept: int
    cleaned: dict[str, int]
    dropped: dict[str, int]
    splits: dict[str, int]
    failed: int = 0  # prompts whose requests failed for good this time (listed in errors.jsonl)


def few_shot_messages(constitution) -> list[dict]:
    """The constitution's few-shot chats, flattened into one prior context."""
    msgs: list[dict] = []
    for chat in constitution.few_shot or []:
        msgs.extend({"role": m["role"], "content": m["content"]} for m in chat)
    return msgs


def record_hash(item: PromptItem, principle, context: list[dict], revision_suffix: str) -> str:
    """Identity of one record's inputs: the prompt text, the principle's texts
    (critique and revision requests), the few-shot context and the suffix."""
    from cai_bench.hashing import digest

    return digest({"prompt": item.prompt, "category": item.category, "principle": principle.model_dump(mode="json"),
                   "context": context, "revision_suffix": revision_suffix})


def principle_statement(principle) -> str:
    """How the answer-only request names a principle: its title and description."""
    return f"{principle.title}: {principle.description}" if principle.description else principle.title


def revision_request_key(cfg: GenerateConfig) -> str:
    """What the revision request is made from, for `record_hash`: the suffix, or the answer-only template."""
    return f"answer_only:{ANSWER_REQUEST}" if cfg.answer_only else cfg.revision_suffix


STEPS = 3  # model calls per prompt: response, critique, revision


def run_chunk(backend: ChatModel, items: Sequence[PromptItem], choices: dict[str, Choice], constitution,
              cfg: GenerateConfig, generator: str, context: list[dict],
              on_step: Callable[[int], None] | None = None, demos: Sequence[dict] = (),
              demo_texts: Sequence[str] = ()) -> tuple[list[CAIRecord], list[dict]]:
    """Run the three steps for a chunk of prompts, each step as one batched call.
    Returns the finished records and, for prompts that failed, `{id, step, error}`.
    `on_step(len(items))` after each step (a failed prompt's skipped steps count as
    done), so a progress bar moves per batch, not once per three batches. `demos`: the
    demonstration turns shown before the revision request; `demo_texts` what the copy
    check compares with."""
    params = GenParams(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.seed)
    failures: list[dict] = []

    def step(name: str, alive: list[int], convs: dict[int, list[dict]]) -> dict[int, object]:
        replies = backend.chat([convs[i] for i in alive], params) if alive else []
        ok = {}
        for i, reply in zip(alive, replies):
            if reply.ok:
                ok[i] = reply
            else:
                failures.append({"id": items[i].id, "step": name, "error": reply.error})
        if on_step:
            on_step(len(items))
        return ok

    principles = [constitution.principle(choices[it.id].principle_id) for it in items]
    convs = {i: context + [{"role": "user", "content": it.prompt}] for i, it in enumerate(items)}
    init = step("init", list(convs), convs)
    init_clean = {i: clean_text(c.text, revision=False, ascii_only=cfg.ascii) for i, c in init.items()}
    convs = {i: convs[i] + [{"role": "assistant", "content": init_clean[i][0]},
                            {"role": "user", "content": principles[i].critique}] for i in init}
    crit = step("critique", list(convs), convs)
    crit_clean = {i: clean_text(c.text, revision=False, ascii_only=cfg.ascii) for i, c in crit.items()}
    # the demonstrations lead the revision request only: the initial answer stays the generator's
    # unguided one (the DPO "rejected" side), and the two earlier calls stay short
    if cfg.answer_only:  # a fresh turn: a small model shown its critique mostly repeats it
        rev_prompts = [answer_request(principle_statement(p), it.prompt) for p, it in zip(principles, items)]
        convs = {i: context + list(demos) + [{"role": "user", "content": rev_prompts[i]}] for i in crit}
    else:
        rev_prompts = [p.revision + cfg.revision_suffix for p in principles]
        convs = {i: context + list(demos) + convs[i][len(context):] + [
            {"role": "assistant", "content": crit_clean[i][0]}, {"role": "user", "content": rev_prompts[i]}]
            for i in crit}
    rev = step("revision", list(convs), convs)
    rev_clean = {i: clean_text(c.text, revision=True, ascii_only=cfg.ascii) for i, c in rev.items()}
    attempts = second_pass(backend, cfg, items, convs, init_clean, rev, rev_clean, demo_texts)
    records = []
    for i, it in enumerate(items):
        if i not in rev:
            continue
        init_text, init_rules = init_clean[i]
        crit_text, crit_rules = crit_clean[i]
        rev_text, rev_rules = rev_clean[i]
        reason = drop_reason(init_text, rev_text, rev[i].finish_reason)
        if reason == "truncated" and cfg.keep_truncated:
            reason = None
        user = {"role": "user", "content": it.prompt}
        records.append(CAIRecord(
            id=it.id, init_prompt=it.prompt, init_response=init_text, critic_prompt=principles[i].critique,
            critic_response=crit_text, revision_prompt=rev_prompts[i], revision_response=rev_text,
            principle_id=principles[i].id, principle_similarity=choices[it.id].similarity,
            constitution=constitution.id, selection=cfg.selection, generator=generator, prompt=it.prompt,
            messages=[user, {"role": "assistant", "content": rev_text}],
            chosen=[user, {"role": "assistant", "content": rev_text}],
            rejected=[user, {"role": "assistant", "content": init_text}],
            cleaning=[f"init_response:{r}" for r in init_rules] + [f"critic_response:{r}" for r in crit_rules]
            + [f"revision_response:{r}" for r in rev_rules],
            drop_reason=reason,
            finish_reasons={"init": init[i].finish_reason, "critic": crit[i].finish_reason,
                            "revision": rev[i].finish_reason},
            category=it.category,
            content_hash=record_hash(it, principles[i], [*context, *demos], revision_request_key(cfg)),
            revision_attempt=attempts.get(i, 0),
        ))
    return records, failures


def second_pass(backend: ChatModel, cfg: GenerateConfig, items: Sequence[PromptItem], convs: dict[int, list[dict]],
                init_clean: dict[int, tuple[str, list[str]]], rev: dict, rev_clean: dict[int, tuple[str, list[str]]],
                demo_texts: Sequence[str]) -> dict[int, int]:
    """Ask again, up to `cfg.retries` times, for the revisions the quality gate would drop.

    Each retry samples (`retry_temperature`, seed `cfg.seed + attempt`) from the same
    conversation, so it is reproducible; a row takes the first revision that passes and
    keeps its greedy one when none does. `rev`/`rev_clean` are updated in place; returns
    {row: the attempt its revision came from}."""
    from cai_bench.generation.quality import quality_reason

    def failing(i: int) -> bool:
        text = rev_clean[i][0]
        return quality_reason(items[i].prompt, init_clean[i][0], text, rev[i].finish_reason, demo_texts) is not None

    attempts: dict[int, int] = {}
    todo = [i for i in rev if failing(i)]
    for attempt in range(1, cfg.retries + 1):
        if not todo:
            break
        params = GenParams(cfg.max_new_tokens, cfg.retry_temperature, cfg.top_p, cfg.seed + attempt)
        replies = backend.chat([convs[i] for i in todo], params)
        still = []
        for i, reply in zip(todo, replies):
            if not reply.ok:
                still.append(i)
                continue
            cleaned = clean_text(reply.text, revision=True, ascii_only=cfg.ascii)
            if quality_reason(items[i].prompt, init_clean[i][0], cleaned[0], reply.finish_reason, demo_texts) is None:
                rev[i], rev_clean[i], attempts[i] = reply, cleaned, attempt
            else:
                still.append(i)
        todo = still
    return attempts


def generator_identity(ckpt) -> dict:
    """How a generate folder names its model: spec, label, fingerprint and, for a
    served model, the endpoint (credentials and query stripped)."""
    from cai_bench.hashing import endpoint

    out = {"spec": ckpt.spec, "kind": ckpt.kind, "model": ckpt.label, "fingerprint": ckpt.fingerprint}
    if ckpt.base_url:
        out["endpoint"] = endpoint(ckpt.base_url)
    return out


def _check_identity(out: Path, identity: dict) -> None:
    path = out / "generation_config.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = None
        if old is not None and old != identity:
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            raise UserError(f"{out}: holds records generated with other settings ({', '.join(diff)} differ); "
                            "use another --out or delete the folder")
    atomic_write_text(path, json.dumps(identity, indent=2) + "\n")


def stats(records: Sequence[CAIRecord]) -> tuple[dict[str, int], dict[str, int]]:
    cleaned = Counter(rule.split(":", 1)[1] for r in records for rule in r.cleaning)
    dropped = Counter(r.drop_reason for r in records if r.drop_reason)
    return ({k: int(cleaned.get(k, 0)) for k in TEXT_RULES}, {k: int(dropped.get(k, 0)) for k in DROP_REASONS})


def generate(cfg: GenerateConfig, *, backend: ChatModel | None = None, generator: dict | None = None,
             on_progress: Callable[[int, int], None] | None = None) -> GenerateResult:
    """Generate (or finish) the data set in `cfg.out` and write its splits.
    `on_progress(done, total)` counts model calls (`STEPS` per prompt still to
    do), reported after every batched call: one chunk is three calls, minutes
    each for a local model on a CPU."""
    from cai_bench.constitutions import load_constitution

    constitution = load_constitution(cfg.constitution)
    items, source = load_prompts(cfg.prompts, cfg.n)
    if cfg.max_new_tokens is None:
        cfg = cfg.model_copy(update={"max_new_tokens": default_max_new_tokens(cfg.prompts)})
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = None
    if generator is None:
        from cai_bench.models import resolve_checkpoint

        ckpt = resolve_checkpoint(cfg.model, base_url=cfg.base_url)
        generator = generator_identity(ckpt)
    _check_identity(out, cfg.identity(generator, constitution.id))
    choices = select_principles([(it.id, it.prompt) for it in items], constitution.principles, cfg.selection,
                                seed=cfg.seed, top_k=cfg.top_k)
    records_path = out / "records.jsonl"
    context = few_shot_messages(constitution) if cfg.few_shot else []
    demos = load_demonstrations(cfg.demonstrations, cfg.seed)
    demo_msgs = demonstration_messages(demos)
    demo_texts = demonstration_texts(demos)
    wanted_hash = {it.id: record_hash(it, constitution.principle(choices[it.id].principle_id), [*context, *demo_msgs],
                                      revision_request_key(cfg)) for it in items}
    done = {r.id for r in read_records(records_path) if r.content_hash == wanted_hash.get(r.id)}
    todo = [it for it in items if it.id not in done]
    log.info("%d prompts, %d already done, %d to generate", len(items), len(items) - len(todo), len(todo))
    failures: list[dict] = []
    if todo:
        own = backend is None
        if backend is None:
            from cai_bench.models.chat import open_checkpoint

            backend = open_checkpoint(ckpt if ckpt is not None else cfg.model, cfg.chat_options())
        chunk = max(1, cfg.batch_size)
        total = STEPS * len(todo)
        calls = [0]

        def on_step(n: int) -> None:
            calls[0] += n
            if on_progress:
                on_progress(calls[0], total)

        if on_progress:
            on_progress(0, total)
        try:
            with RecordWriter(records_path) as writer:
                for start in range(0, len(todo), chunk):
                    records, failed = run_chunk(backend, todo[start:start + chunk], choices, constitution, cfg,
                                                generator["spec"], context, on_step, demo_msgs, demo_texts)
                    writer.write(records)
                    failures += failed
        finally:
            if own:
                backend.close()
    _write_errors(out / ERRORS_FILE, failures)
    wanted = {it.id: i for i, it in enumerate(items)}
    records = sorted((r for r in read_records(records_path) if r.id in wanted and r.content_hash == wanted_hash[r.id]),
                     key=lambda r: wanted[r.id])
    cleaned, dropped = stats(records)
    kept = sum(1 for r in records if r.drop_reason is None)
    info = {
        "constitution": constitution.id, "prompts_source": source,
        "model": generator, "engine": cfg.engine if is_local_kind(generator.get("kind", "")) else None,
        "selection": cfg.selection, "seed": cfg.seed, "top_k": cfg.top_k,
        "few_shot": cfg.few_shot, "generation": {"max_new_tokens": cfg.max_new_tokens,
                                                 "temperature": cfg.temperature, "top_p": cfg.top_p},
        "revision_suffix": cfg.revision_suffix, "ascii": cfg.ascii, "keep_truncated": cfg.keep_truncated,
        "answer_only": cfg.answer_only, "demonstrations": len(demos), "retries": cfg.retries,
        "revision_attempts": dict(Counter(str(r.revision_attempt) for r in records)),
        "counts": {"prompts": len(items), "generated": len(records), "kept": kept,
                   "dropped": len(records) - kept, "failed": len(failures)},
        "cleaning": {"cleaned": cleaned, "dropped": dropped},
        "principles": dict(Counter(r.principle_id for r in records)),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    splits = write_dataset(records, out, seed=cfg.seed, test_size=cfg.test_size, info=info)
    return GenerateResult(out=out, prompts=len(items), generated_now=len(todo) - len(failures),
                          reused=len(items) - len(todo), kept=kept, cleaned=cleaned, dropped=dropped, splits=splits,
                          failed=len(failures))


ERRORS_FILE = "errors.jsonl"


def _write_errors(path: Path, failures: Sequence[dict]) -> None:
    """The prompts that failed in this run (none: the file is removed); a re-run retries them."""
    if failures:
        atomic_write_text(path, "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failures))
    elif path.exists():
        path.unlink()
