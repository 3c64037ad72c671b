"""Cleaning rules for model outputs, each named, documented and counted.

Text rules (applied in this order, each counted when it changes a text):

- ``role_tags``: leaked chat-template text is removed: a leading role header
  (``Assistant:``, ``AI:``, ``<|im_start|>assistant``, ``[/INST]`` ...); the text is
  cut at the first end-of-turn or next-turn marker (``<|im_end|>``, ``<|eot_id|>``,
  ``<|im_start|>user``, ``</s><s>[INST]``, a line starting ``Human:``/``User:``/
  ``System:``/``Assistant:``) because what follows is the model writing the rest of the
  dialogue; any other ``<|...|>`` special token is dropped. Role names only count
  capitalised at a line start ("the user: interface" and indented ``user: admin`` stay).
- ``meta_preamble`` (revisions only): an opening that announces the rewrite is removed
  -- "Certainly! Here's a revised version of the response:", "Sure, here's a rewritten
  version that avoids ...:", "Revised response:", "**Revision:**", "### Revised
  response" on its own line, "I've revised the response to ... Here it is:" -- and
  quotes that then wrap the whole answer are dropped. It must name the answer itself
  (a revised/rewritten/safer ... version, response, answer or reply; a revision; a
  rewrite) and end at its own ":", "." or "!";
  openings that introduce content ("Here are some new ways to save money: ...",
  "Here's the updated version of the schedule: ...") are kept.
- ``trailing_offer`` (revisions only): closing sentences, removed one at a time from
  the end, that offer more help ("Let me know if you'd like any other changes!", "I
  hope this helps!", "If you have more questions, feel free to ask.") or comment on
  the edit ("This revised response removes ...", "Note: I removed ...", "(Note: the
  original response was harmful.)"). A sentence with content stops the scan: "Let me
  know your budget and ...", "Feel free to use the public library's free wifi.",
  "If you need more help, call Lifeline on 0800 567 567.", "Note: the deadline is
  31 October." are kept.
- ``nfkc``: Unicode NFKC normalization (compatibility forms, full-width letters).
- ``ascii`` (only with ``ascii_fold=True``): typographic punctuation mapped to
  ASCII, accents stripped, anything else non-ASCII removed.

Drop reasons (a record that fails is kept in ``records.jsonl`` with its reason
but left out of the SFT/preference splits):

- ``empty_initial``: the initial response is empty after cleaning;
- ``empty``: the revision is empty after cleaning;
- ``identical``: the revision equals the initial response (case and whitespace ignored);
- ``truncated``: generation stopped at the token limit and the revision does
  not end a sentence (cut off mid-sentence).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

TEXT_RULES = ("role_tags", "meta_preamble", "trailing_offer", "nfkc", "ascii")
DROP_REASONS = ("empty_initial", "empty", "identical", "truncated")

# Role tags. A response that leaks its chat template is cut at the first token or line
# that ends the turn or opens the next one: whatever follows is the model writing the
# rest of the dialogue (the user's next message, another answer), not this response.
# Role names must be capitalised at the start of a line so that prose ("the user:") and
# indented config ("  user: admin") survive; the Llama-2 ``<s>``/``</s>``/``[INST]``
# markers only count in a turn-shaped position because ``<s>`` is also HTML.
_LEADING_HEADER = re.compile(
    r"^\s*(?:(?:<s>|<\|begin_of_text\|>|\[/INST\]|<\|im_start\|>\s*assistant\b|<\|assistant\|>"
    r"|<\|start_header_id\|>\s*assistant\s*<\|end_header_id\|>|<start_of_turn>\s*model\b)\s*)+"
)
_LEADING_ROLE = re.compile(r"^\s*(?:assistant|ai|bot|response)\s*:\s*", re.IGNORECASE)
_TURN_BREAK = re.compile(
    r"<\|(?:im_end|im_start|eot_id|eom_id|endoftext|end|start_header_id|user|system|assistant)\|>"
    r"|<(?:end|start)_of_turn>|<｜(?:end▁of▁sentence|User)｜>"
    r"|</s>(?=\s*(?:$|<s>|\[INST\]|(?:Human|User|System|Assistant)\s*:))|(?:<s>\s*)\[INST\]|(?:^|\n)\s*\[INST\]"
    r"|(?:^|\n)(?:\*\*)?(?:Human|User|System|Assistant)(?:\*\*)?[ \t]*:"
)
_SPECIAL_TOKEN = re.compile(r"<\|[\w-]{1,40}\|>|<｜[^｜\n]{1,40}｜>")

# Meta preamble: the revision opens by announcing itself. Only a noun phrase that names
# the answer being rewritten ("a revised version", "the rewritten response", "my
# revision") counts -- "Here are some new ways to save money:" introduces content and a
# "version of <something else>" is content too -- and the whole announcement must end
# at its own ":", "." or "!", so nothing after it is touched.
_AFFIRM = (r"(?:(?:certainly|sure(?: thing)?|of course|absolutely|okay|ok|alright|great|got it|understood"
           r"|no problem)[!,.]*\s+)?")
_MOD = (r"(?:revised|rewritten|re-written|reworded|rephrased|updated|improved|edited|modified|corrected|amended"
        r"|new|better|safer|kinder|clearer|(?:more|less)\s+[\w-]+|(?:[\w-]+ly\s+)?(?:respectful|harmless"
        r"|inclusive|appropriate|ethical|polite|neutral|sensitive|balanced|responsible))")
_RESP = r"(?:response|answer|reply)"
_NP = (rf"(?:(?:a|an|the|my|this)\s+)?(?:{_MOD}(?:,?\s+(?:and\s+)?{_MOD})?\s+(?:version|draft|text|{_RESP})"
       r"|revision|rewrite)")
_OF_RESP = (r"(?:\s+(?:of|to)\s+(?:the|my|your|this)\s+(?:(?:original|previous|initial|above|last|user's)\s+)?"
            rf"(?:{_RESP}|question|prompt|request)){{0,2}}")
_QUAL = (r"(?:,?\s+(?:that|which|without|so that|removing|avoiding|addressing|focusing|free of|following"
         r"|based on|incorporating|according to|to (?:address|remove|avoid|reflect|incorporate|ensure|align"
         r"|comply))\b[^\n:.!?]{0,150})?")
_END = r"\s*(?:\*\*|__)?\s*[:.!](?:\s*(?:\*\*|__))?"
_META_PREAMBLE = re.compile(
    rf"^\s*(?:#{{1,6}}\s*|\*\*|__)?{_AFFIRM}(?:"
    rf"(?:here(?:'s|’s|\s+is)|below\s+is|following\s+is|this\s+is)\s+{_NP}{_OF_RESP}{_QUAL}{_END}"
    rf"|here(?:'s|’s|\s+is)\s+how\s+i\s+(?:would|could|might|can)\s+(?:revise|rewrite|rephrase)\s+(?:the|my)\s+"
    rf"(?:(?:original|previous|initial)\s+)?{_RESP}{_QUAL}{_END}"
    rf"|i(?:'ve|’ve|\s+have)\s+(?:revised|rewritten|reworded|rephrased|edited)\s+(?:the|my)\s+"
    rf"(?:(?:original|previous|initial)\s+)?{_RESP}\b[^\n:.!?]{{0,150}}[:.!](?:\s*here\s+it\s+is{_END})?"
    rf"|{_NP}{_OF_RESP}(?:\s*\([^)\n]{{0,80}}\))?\s*(?:\*\*|__)?\s*:(?:\s*(?:\*\*|__))?"
    r")\s*",
    re.IGNORECASE,
)
_META_HEADING = re.compile(  # "### Revised response" / "**Revision**" alone on its line
    rf"^\s*(?:#{{1,6}}\s*(?:\*\*)?|\*\*){_NP}{_OF_RESP}(?:\*\*)?[ \t]*:?[ \t]*(?:\*\*)?[ \t]*\n\s*",
    re.IGNORECASE,
)

# Trailing meta: closing sentences addressed to the requester about the exchange, not
# about the topic. Offers match whole sentences with a short tail (no digits or ":",
# which carry content such as a phone number); "If you need more help, call Lifeline
# on ..." needs an offer cue to count. Notes count only when they talk about the edit.
_OFFER = re.compile(
    r"(?:(?:please|do|and|so)\s+)?(?:"
    r"let me know (?:if|whether) (?:you|there|i\b|anything|this|that|it\b|any)"
    r"|feel free to (?:ask|reach out|let me know|contact me|get in touch|follow up)"
    r"|(?:don't|don’t|do not) hesitate to (?:ask|reach out|let me know|contact me)"
    r"|(?:i )?hope (?:this|that|it|my) (?:(?:information|answer|response|explanation|advice) )?(?:helps|helped"
    r"|(?:is|was) (?:helpful|useful)|clarifies|answers|addresses|makes sense|works)"
    r"|is there anything else"
    r"|i(?:'m|’m| am) (?:happy|glad|here) to help"
    r"|(?:if|should) you (?:have|need|want|would like|'d like|’d like) (?:any )?"
    r"(?:(?:more|further|other|additional) )?(?:questions|help|information|assistance|changes|details"
    r"|clarification|edits|revisions)\b(?=[^.!?\n]*(?:let me know|feel free|hesitate|just ask|happy to|glad to"
    r"|i(?:'m|’m| am) here))"
    r")[^\n:\d]{0,100}",
    re.IGNORECASE,
)
_NOTE = re.compile(r"^[(*_\s]*note[*_]*\s*:[*_\s]*", re.IGNORECASE)
_EDIT_NOTE = re.compile(
    r"(?:in )?(?:(?:this|my|the)\s+(?:(?:revised|rewritten|edited|updated|improved|modified)\s+"
    rf"(?:version|draft|{_RESP})|revision|rewrite)\b(?!\s+of\b)"
    r"|i(?: have|'ve|’ve)? (?:revised|rewritten|reworded|rephrased|edited)\b"
    r"|the (?:original|previous|initial) (?:response|reply)\b)",
    re.IGNORECASE,
)
_EDIT_WEAK = re.compile(
    r"i(?: have|'ve|’ve)? (?:removed|changed|modified|replaced|omitted|added|adjusted|toned down|made|kept"
    r"|focused|rewrote|reframed|softened)\b",
    re.IGNORECASE,
)
_EDIT_CUE = re.compile(
    r"\b(?:original|response|answer|revision|wording|language|references?|mentions?|harmful|problematic"
    r"|offensive|stereotyp\w*|critique)\b",
    re.IGNORECASE,
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][)\]\"'”’*_])\s+")
_SENTENCE_TAIL = set(".!?)]\"'”’*_")
_RULE_LINE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})$")
_SENTENCE_END = re.compile(r"[.!?…)\]\"'”’*`]\s*$")
_ASCII_MAP = str.maketrans({
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
    "–": "-", "—": "-", "―": "-", "−": "-", "…": "...", "•": "*", " ": " ", "«": '"', "»": '"',
})


def strip_role_tags(text: str) -> str:
    """Remove a leading role header, cut at a leaked end-of-turn/next-turn marker, drop stray tokens.

    Chat models whose stop tokens are missing keep writing the dialogue ("\nUser: ...",
    "<|im_end|><|im_start|>user ..."); that continuation is not the answer and would
    teach the fine-tuned model to hallucinate turns, so it is cut rather than unwrapped.
    """
    out = _LEADING_HEADER.sub("", text, count=1)
    out = _LEADING_ROLE.sub("", out, count=1)
    m = _TURN_BREAK.search(out)
    if m:
        out = out[: m.start()]
    return _SPECIAL_TOKEN.sub("", out).strip()


def strip_meta_preamble(text: str) -> str:
    """Remove an opening that announces the revision instead of being it.

    Quotes that then wrap the whole answer are dropped too (the model quoted its
    rewrite); an answer that merely starts with "Here are ..." is left alone.
    """
    out = _META_PREAMBLE.sub("", text, count=1)
    if out == text:
        out = _META_HEADING.sub("", text, count=1)
    if out == text:
        return text
    out = out.strip()
    if len(out) >= 2 and out[0] in "\"“" and out[-1] in "\"”" and sum(map(out.count, "\"“”")) == 2:
        out = out[1:-1].strip()
    return out


def _is_meta_sentence(sentence: str) -> bool:
    """A closing sentence that offers more help or comments on the edit, carrying no content."""
    s = sentence.strip()
    if _OFFER.fullmatch(s):
        return True
    body = _NOTE.sub("", s, count=1)
    if _EDIT_NOTE.match(body):
        return True
    return bool(_EDIT_WEAK.match(body) and (body != s or _EDIT_CUE.search(body)))


def _drop_trailing_symbols(text: str) -> str:
    """Text without an emoji or sign-off symbol after its last sentence (a plain loop: linear time)."""
    end = len(text)
    while end and not (text[end - 1].isalnum() or text[end - 1] in _SENTENCE_TAIL):
        end -= 1
    return text[:end]


def strip_trailing_offer(text: str) -> str:
    """Remove closing sentences that offer more help or comment on the edit, one at a time.

    Works sentence by sentence from the end, so a trailing paragraph goes only when every
    sentence in it is meta, and the first content sentence stops the scan.
    """
    out = text.rstrip()
    removed = False
    while out:
        para_start = out.rfind("\n") + 1
        paragraph = out[para_start:].strip()
        if removed and _RULE_LINE.match(paragraph):  # a separator left above a removed note
            out = out[:para_start].rstrip()
            continue
        core = _drop_trailing_symbols(out)
        last = _SENTENCE_SPLIT.split(core[core.rfind("\n") + 1:].strip())[-1]
        if not last or not _is_meta_sentence(last):
            break
        out = core[: core.rfind(last)].rstrip()
        removed = True
    return out


def nfkc(text: str) -> str:
    """Unicode NFKC: full-width letters, ligatures and other compatibility forms become plain text."""
    return unicodedata.normalize("NFKC", text)


def ascii_fold(text: str) -> str:
    """Map typographic punctuation to ASCII, strip accents, drop the rest."""
    mapped = unicodedata.normalize("NFKD", text.translate(_ASCII_MAP))
    return mapped.encode("ascii", "ignore").decode("ascii")


def normalize_for_compare(text: str) -> str:
    """Case- and whitespace-insensitive form used to detect unchanged revisions."""
    return " ".join(text.casefold().split())


def is_cut_off(text: str, finish_reason: str | None) -> bool:
    """Stopped at the token limit without ending a sentence."""
    return finish_reason == "length" and not _SENTENCE_END.search(text)


@dataclass
class CleaningStats:
    """Counts of texts changed per rule and records dropped per reason."""

    cleaned: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "cleaned": {r: int(self.cleaned.get(r, 0)) for r in TEXT_RULES},
            "dropped": {r: int(self.dropped.get(r, 0)) for r in DROP_REASONS},
        }


def clean_text(text: str, *, revision: bool, ascii_only: bool = False) -> tuple[str, list[str]]:
    """Apply the text rules; return the cleaned text and the rules that changed it."""
    applied: list[str] = []
    steps = [("role_tags", strip_role_tags)]
    if revision:
        steps += [("meta_preamble", strip_meta_preamble), ("trailing_offer", strip_trailing_offer)]
    steps.append(("nfkc", nfkc))
    if ascii_only:
        steps.append(("ascii", ascii_fold))
    out = text.strip()
    for name, fn in steps:
        new = fn(out).strip()
        if new != out:
            applied.append(name)
            out = new
    return out, applied


def drop_reason(init_response: str, revision: str, revision_finish: str | None) -> str | None:
    """Why a (cleaned) record is unusable for training, or None if it is fine."""
    if not init_response.strip():
        return "empty_initial"
    if not revision.strip():
        return "empty"
    if normalize_for_compare(revision) == normalize_for_compare(init_response):
        return "identical"
    if is_cut_off(revision, revision_finish):
        return "truncated"
    return None
