"""The data quality gate: what a CAI data set keeps, what it drops and why, and
whether enough is left to train on.

Cleaning (cleaning.py) already drops empty, identical and cut-off revisions. The
gate adds the failures that made a real run train on junk (issue 15): revisions
that talk *about* the response instead of answering, bare refusals, and answers
in another language than the prompt. Each record gets its first failing reason:

- ``empty`` / ``empty_initial``: nothing left after cleaning;
- ``truncated``: the revision stopped at the token limit mid-sentence;
- ``repetitive``: the revision loops: a run of 6 words recurs 3 or more times
  ("The law is designed to ensure ... The law is designed to ensure ..."), which
  a small generator does when it runs on to its token limit and which SFT would
  learn;
- ``meta_commentary``: the revision describes a response rather than being one:
  its first sentence is about "the response" / "the original answer" / "the
  critique" / "my revision" ("The response is most respectful of ...", "This
  revised answer avoids ..."), or at least a third of its sentences are;
- ``copied_demonstration``: the revision repeats a few-shot demonstration shown to
  the generator (half or more of its word 5-grams are in one demonstration): the
  row would train on the demonstration's answer, not the generator's own;
- ``identical``: the revision equals the initial answer (case/space ignored);
- ``refusal_only``: a refusal with no content: it opens with a refusal phrase
  and has fewer than ``REFUSAL_MIN_WORDS`` (20) words, so it teaches nothing
  beyond "say no";
- ``language_drift``: the prompt is in Latin script and mostly function words of
  English, but the revision is not (under 60 % Latin letters, or under 10 %
  English function words over 15+ words): a drifted generator.

The gate passes when at least ``min_kept_fraction`` (default 0.5) of the records
and at least ``min_kept`` (default 16) records are kept; otherwise
`check_gate` stops with a message naming the top reasons (override:
``--allow-low-quality`` / ``data.allow_low_quality: true``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cai_bench.errors import UserError
from cai_bench.generation.cleaning import is_cut_off, normalize_for_compare

COPY_NGRAM = 5  # word n-grams compared by `copied_fraction`
_WORDS = re.compile(r"[^\W_]+", re.UNICODE)


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = [w.casefold() for w in _WORDS.findall(text)]
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def copied_fraction(text: str, sources: list[str] | tuple[str, ...], n: int = COPY_NGRAM) -> float:
    """The largest share of `text`'s word n-grams found in any one source text (0 when
    `text` is shorter than n words): 1.0 is a verbatim copy, a paraphrase stays low."""
    grams = _ngrams(text, n)
    if not grams:
        return 0.0
    return max((len(grams & _ngrams(s, n)) / len(grams) for s in sources), default=0.0)


REASONS = ("empty_initial", "empty", "truncated", "repetitive", "meta_commentary", "copied_demonstration",
           "identical", "refusal_only", "language_drift")
DEFAULT_MIN_KEPT_FRACTION = 0.5
DEFAULT_MIN_KEPT = 16
REFUSAL_MIN_WORDS = 20
# The way through when a small in-process generator fails the gate: a served instruct model (pipeline flags).
STRONGER_GENERATOR = ("a served instruct model as generator, e.g. --set data.generator=ollama:llama3.1:8b (an Ollama "
                      "server at $OLLAMA_HOST) or --set data.generator=openai:MODEL with OPENAI_BASE_URL=http://HOST:PORT/v1 "
                      "(any OpenAI-compatible server, e.g. vLLM); or more prompts")
COPY_THRESHOLD = 0.5  # share of a revision's word 5-grams found in one demonstration

_SUBJECT = (r"(?:the|this|that|my|your|our|its|an?)\s+(?:(?:original|initial|previous|above|earlier|first|new|"
            r"revised|rewritten|updated|improved|edited|assistant'?s?|ai'?s?|model'?s?|given|provided|following)\s+)*"
            r"(?:response|answer|reply|revision|rewrite|critique|principle|version|output)s?\b")
# A sentence about the response: it opens with the response as its subject, or
# it says what the response does ("... the response is / does / should ...").
_META_OPEN = re.compile(rf"^\W*(?:(?:in|with|for|regarding|overall|however|therefore|thus|here|so)\W+)*"
                        rf"(?:{_SUBJECT})", re.IGNORECASE)
_META_ANY = re.compile(rf"\b{_SUBJECT}\s+(?:is|was|does|did|should|could|would|has|had|avoids|promotes|respects|"
                       rf"acknowledges|addresses|fails|aligns|reflects|upholds|violates|needs|lacks|must)\b",
                       re.IGNORECASE)
_SENT = re.compile(r"(?<=[.!?])\s+")
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry|i apologi[sz]e|i cannot|i can'?t|i can not|i won'?t|i will not|"
    r"i'?m (?:not able|unable) to|i am (?:not able|unable) to|i must decline|i refuse|as an ai|"
    r"unfortunately,? i)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_EN_FUNCTION = frozenset(
    "the a an and or but of to in on at for with is are was were be been it this that these those i you he she "
    "we they my your our their not no do does did can could should would will as by from if so what how why "
    "when where who which there here about".split())


def _sentences(text: str) -> list[str]:
    return [s for s in (x.strip() for x in _SENT.split(text.strip())) if s]


def is_meta_commentary(text: str) -> bool:
    """The text talks about a response (or the critique) instead of answering."""
    sents = _sentences(text)
    if not sents:
        return False
    if _META_OPEN.match(sents[0]):
        return True
    about = sum(1 for s in sents if _META_OPEN.match(s) or _META_ANY.search(s))
    return about * 3 >= len(sents)


REPEAT_NGRAM, REPEAT_TIMES = 6, 3


def is_repetitive(text: str) -> bool:
    """Some run of REPEAT_NGRAM words occurs REPEAT_TIMES or more times: a generation loop."""
    words = [w.casefold() for w in _WORD.findall(text)]
    grams = Counter(tuple(words[i:i + REPEAT_NGRAM]) for i in range(len(words) - REPEAT_NGRAM + 1))
    return bool(grams) and max(grams.values()) >= REPEAT_TIMES


def opens_with_refusal(text: str) -> bool:
    return bool(_REFUSAL.match(text.replace("\u2019", "'")))


def is_refusal_only(text: str) -> bool:
    """A refusal phrase and too few words to carry any explanation."""
    return opens_with_refusal(text) and len(text.split()) < REFUSAL_MIN_WORDS


def _latin_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 1.0
    return sum(1 for c in letters if "LATIN" in _char_name(c)) / len(letters)


def _char_name(c: str) -> str:
    import unicodedata

    return unicodedata.name(c, "")


def _english_share(text: str) -> tuple[float, int]:
    words = [w.casefold() for w in _WORD.findall(text)]
    if not words:
        return 0.0, 0
    return sum(1 for w in words if w in _EN_FUNCTION) / len(words), len(words)


def is_language_drift(prompt: str, text: str) -> bool:
    """An English, Latin-script prompt answered in another script or language."""
    p_share, p_n = _english_share(prompt)
    if _latin_share(prompt) < 0.9 or p_share < 0.15 or p_n < 4:
        return False  # the check only knows English prompts; others are never flagged
    if _latin_share(text) < 0.6:
        return True
    t_share, t_n = _english_share(text)
    return t_n >= 15 and t_share < 0.10


def quality_reason(prompt: str, initial: str, revision: str, revision_finish: str | None = None,
                   demonstrations: Sequence[str] = ()) -> str | None:
    """The first reason (in REASONS order) this example is unfit for training, or None.
    `demonstrations`: the texts of the few-shot demonstrations the generator was shown."""
    if not initial.strip():
        return "empty_initial"
    if not revision.strip():
        return "empty"
    if is_cut_off(revision, revision_finish):
        return "truncated"
    if is_repetitive(revision):
        return "repetitive"
    if is_meta_commentary(revision):
        return "meta_commentary"
    if demonstrations and copied_fraction(revision, demonstrations) >= COPY_THRESHOLD:
        return "copied_demonstration"
    if normalize_for_compare(revision) == normalize_for_compare(initial):
        return "identical"
    if is_refusal_only(revision):
        return "refusal_only"
    if is_language_drift(prompt, revision):
        return "language_drift"
    return None


@dataclass
class QualityReport:
    """Kept vs dropped, per reason, with up to two examples per reason."""

    total: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    initial_truncated: int = 0  # initial answers that hit the token limit (kept as DPO 'rejected')

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.total if self.total else 0.0

    def add(self, reason: str | None, text: str, initial_finish: str | None = None) -> None:
        self.total += 1
        if initial_finish == "length":
            self.initial_truncated += 1
        if reason is None:
            self.kept += 1
            return
        self.dropped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 2:
            ex.append(text[:200])

    @classmethod
    def from_dict(cls, d: dict) -> "QualityReport":
        """What `as_dict` wrote (a finished data stage's quality.json), for re-checking the gate."""
        return cls(total=int(d.get("total", 0)), kept=int(d.get("kept", 0)),
                   dropped=Counter({r: int(n) for r, n in (d.get("dropped") or {}).items() if n}),
                   examples=dict(d.get("examples") or {}), initial_truncated=int(d.get("initial_truncated", 0)))

    def as_dict(self) -> dict:
        return {"total": self.total, "kept": self.kept, "kept_fraction": round(self.kept_fraction, 4),
                "dropped": {r: int(self.dropped.get(r, 0)) for r in REASONS},
                "initial_truncated": self.initial_truncated, "examples": self.examples}


def assess(rows: Iterable[dict], demonstrations: Sequence[str] = ()) -> tuple[list[dict], QualityReport]:
    """Gate rows with keys prompt, init_response, revision_response and optional
    finish_reasons / drop_reason (a cleaning drop reason wins); returns the kept rows.
    `demonstrations`: texts of the few-shot demonstrations the generator saw."""
    report = QualityReport()
    kept: list[dict] = []
    for row in rows:
        fin = row.get("finish_reasons") or {}
        reason = row.get("drop_reason") or quality_reason(
            row.get("prompt") or row.get("init_prompt") or "", row.get("init_response") or "",
            row.get("revision_response") or "", fin.get("revision"), demonstrations)
        report.add(reason, row.get("revision_response") or "", fin.get("init"))
        if reason is None:
            kept.append(row)
    return kept, report


def check_gate(report: QualityReport, *, min_kept_fraction: float = DEFAULT_MIN_KEPT_FRACTION,
               min_kept: int = DEFAULT_MIN_KEPT, allow: bool = False, where: str = "data") -> list[str]:
    """Stop (UserError) when too little is kept, unless `allow`; returns warnings."""
    top = ", ".join(f"{r} {n}" for r, n in report.dropped.most_common(3)) or "none"
    if report.kept == 0:  # nothing to train on: no flag makes that trainable
        raise UserError(f"{where}: quality gate failed: kept 0/{report.total} (dropped: {top}); nothing to train on, "
                        f"so --allow-low-quality cannot override it. Fix: {STRONGER_GENERATOR}")
    problems = []
    if report.kept_fraction < min_kept_fraction:
        problems.append(f"kept {report.kept}/{report.total} ({report.kept_fraction:.0%}) < {min_kept_fraction:.0%}")
    if report.kept < min_kept:
        problems.append(f"kept {report.kept} < {min_kept} examples")
    if not problems:
        return []
    msg = (f"{where}: quality gate failed: {'; '.join(problems)} (dropped: {top}). Fix: {STRONGER_GENERATOR}; or "
           f"pass --allow-low-quality to train on it anyway")
    if not allow:
        raise UserError(msg)
    return [msg.replace("quality gate failed", "quality gate overridden (--allow-low-quality)")]
