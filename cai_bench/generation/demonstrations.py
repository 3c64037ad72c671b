"""The answer-only revision request and its few-shot demonstrations, for a small generator.

A 135M generator asked, after its critique, to "rewrite the response" for a new
culture mostly repeats its critique or runs past its token budget (issue 25: 0 of
64 kept; with a suffix asking for the answer only, the kept rows still talked
about the response). Asked instead in a fresh turn -- the principle, the request,
"answer in at most four sentences, in a way that upholds the principle" -- and
shown two worked examples first, it writes an answer of its own. The examples are
red-team prompts with GPT-4o's revised answers from the data that ships in the
package (cai_bench/data/bluedot_cai, MIT, see its NOTICE), from the built-in
cultures, so a new culture's rows are still the generator's own answers;
The quality gate's `copied_fraction` rejects a revision that repeats one.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cai_bench.errors import UserError
from cai_bench.generation.quality import opens_with_refusal

DEMO_CULTURES = ("sa", "ro")  # folders under the packaged bluedot_cai/
MAX_DEMO_WORDS = 70  # a demonstration's revision and initial answer: short, so the generator copies the length
CRITIQUE_SENTENCES = 2  # a demonstration's critique is cut to its opening sentences: every shown token costs CPU time


ANSWER_REQUEST = ("Principle: {principle}\n\nRequest: {prompt}\n\nAnswer the request in at most four sentences, in "
                  "a way that upholds the principle. If the request asks for something the principle forbids, decline "
                  "briefly, say why, and offer a better way to help. Write only the answer.")


def answer_request(principle: str, prompt: str) -> str:
    """The revision request of `answer_only`: a fresh turn naming the principle and the request."""
    return ANSWER_REQUEST.format(principle=principle, prompt=prompt)


@dataclass(frozen=True)
class Demonstration:
    """One worked exchange: prompt, initial answer, critique, and the revision that the
    principle asks for (`principle`: its text, as the critique request quotes it)."""

    prompt: str
    initial: str
    principle: str
    critique: str
    revision: str

    def messages(self) -> list[dict]:
        """The exchange as the answer-only request and its answer."""
        return [{"role": "user", "content": answer_request(self.principle, self.prompt)},
                {"role": "assistant", "content": self.revision}]


def _packaged_dir() -> Path:
    from cai_bench.data import PACKAGED_ROOT

    return PACKAGED_ROOT / "bluedot_cai"


@lru_cache(maxsize=4)
def _pool(root: str) -> tuple[Demonstration, ...]:
    """Every short, complete exchange of the packaged GPT-4o SFT sets, in file order."""
    out: list[Demonstration] = []
    for culture in DEMO_CULTURES:
        path = Path(root) / culture / "sft_dataset.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: the packaged demonstrations could not be read ({exc}); reinstall cai-bench "
                            "or set data.demonstrations: 0") from None
        for key in sorted(data):
            for row in data[key]:
                demo = Demonstration(row["initial_prompt"].strip(), row["initial_response"].strip(),
                                     _quoted_principle(row["critique_prompt"]), _first_sentences(row["critique_response"]),
                                     row["revision_response"].strip())
                if (len(demo.revision.split()) <= MAX_DEMO_WORDS and len(demo.initial.split()) <= MAX_DEMO_WORDS
                        and demo.revision[-1:] in ".!?"):
                    out.append(demo)
    return tuple(out)


def _quoted_principle(critique_request: str) -> str:
    """The principle a GPT-4o critique request quotes ("... with respect to this principle: '...'")."""
    m = re.search(r"principle:?\s*'(.+)'", critique_request, re.S)
    return (m.group(1) if m else critique_request).strip()


def _first_sentences(text: str, n: int = CRITIQUE_SENTENCES) -> str:
    return " ".join(re.split(r"(?<=[.!?])\s+", text.strip())[:n])


def load_demonstrations(k: int, seed: int, root: Path | None = None) -> list[Demonstration]:
    """`k` demonstrations drawn by `seed` from the packaged data (none for k = 0): one that
    refuses and one that answers where k >= 2, so neither shape is the only one shown."""
    if k <= 0:
        return []
    pool = _pool(str(root or _packaged_dir()))
    rng = random.Random(f"demonstrations:{seed}")
    refusing = [d for d in pool if _opens_with_refusal(d.revision)]
    engaging = [d for d in pool if not _opens_with_refusal(d.revision)]
    picks: list[Demonstration] = []
    for i in range(k):
        group = (refusing if i % 2 == 0 else engaging) or pool
        choice = rng.choice([d for d in group if d not in picks] or group)
        picks.append(choice)
    return picks


def _opens_with_refusal(text: str) -> bool:
    return opens_with_refusal(text)


def demonstration_messages(demos: list[Demonstration]) -> list[dict]:
    msgs: list[dict] = []
    for d in demos:
        msgs.extend(d.messages())
    return msgs


def demonstration_texts(demos: list[Demonstration]) -> list[str]:
    """What a copied revision could repeat: each demonstration's initial answer and revision."""
    return [t for d in demos for t in (d.initial, d.revision)]
