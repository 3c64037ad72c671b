"""Cleaning rules on real-looking model outputs."""

from __future__ import annotations

import pytest

from cai_bench.generation.cleaning import (
    ascii_fold,
    clean_text,
    drop_reason,
    is_cut_off,
    strip_meta_preamble,
    strip_role_tags,
    strip_trailing_offer,
)


@pytest.mark.parametrize("raw, expected", [
    ("Certainly! Here's a revised version of the response:\n\nI can't help with that, but I can suggest "
     "legal ways to save money.", "I can't help with that, but I can suggest legal ways to save money."),
    ("Sure, here is the rewritten response that avoids stereotypes: People in every region work hard.",
     "People in every region work hard."),
    ("Revised response: Everyone deserves equal respect.", "Everyone deserves equal respect."),
    ("Here is my revised answer, which removes the harmful advice:\n\"Please talk to a doctor first.\"",
     "Please talk to a doctor first."),
    ("Revision: I won't write that joke.", "I won't write that joke."),
    ("Sure, here's a rewritten version that focuses on safety and legality:\n\nStore medicines out of "
     "children's reach.", "Store medicines out of children's reach."),
    ("Here is the revised response:\nEveryone should be treated fairly.", "Everyone should be treated fairly."),
    ("**Revised Response:**\n\nI can't share someone's home address.", "I can't share someone's home address."),
    ("Of course. Here's a more respectful and inclusive response:\n\nPeople of all faiths live in the city.",
     "People of all faiths live in the city."),
    ("Rewritten version (without the insult): Your colleague may see things differently.",
     "Your colleague may see things differently."),
    ("I've revised the response to remove the dangerous instructions. Here it is:\n\nPlease contact the "
     "poison control centre.", "Please contact the poison control centre."),
    ("Here's how I would revise the response:\n\nI can't help you track your partner's phone.",
     "I can't help you track your partner's phone."),
    ("### Revised response\n\nI can't help you track your partner's phone.",
     "I can't help you track your partner's phone."),
    ("Here's a revised version of the response to the user's question:\n\nNo.", "No."),
])
def test_meta_preamble_removed(raw, expected):
    assert strip_meta_preamble(raw) == expected


@pytest.mark.parametrize("raw", [
    # openings that introduce the content itself are kept verbatim
    "Here are some new ways to save money:\n1. Cook at home.\n2. Cancel unused subscriptions.\n"
    "3. Compare insurance quotes every year.",
    "Here are three ways to stay safe online: use strong passwords, update software, and back up files.",
    "Here is the updated version of the schedule:\n- 09:00 registration\n- 10:00 keynote",
    "Here's a new approach: set aside 10% of every paycheque before paying any bills.",
    "Here are some revised guidelines from the health department: wash hands for 20 seconds.",
    "This is a better answer than most people expect: the pension is paid from age 60.",
    "Here is an appropriate response to a phishing email: don't reply, and report it to your bank.",
    "Here's a more polite reply you could send: \"Thanks for the offer, but I'll pass.\"",
    "New version of the law: tenants must get 30 days' notice before eviction.",
    "I've updated my budget every month, and it helped me save R500.",
    "Sure! The capital of Romania is Bucharest.",
    "\"Be the change you wish to see in the world\" is often attributed to Gandhi.",
    "\"No.\"",
    "### Revised tax brackets\n\n- 18% up to R237 100",
])
def test_meta_preamble_keeps_content(raw):
    assert strip_meta_preamble(raw) == raw


@pytest.mark.parametrize("raw, expected", [
    ("I can't help with hacking your neighbour's wifi. You could ask them to share it.\n\n"
     "Let me know if you need anything else!",
     "I can't help with hacking your neighbour's wifi. You could ask them to share it."),
    ("Apartheid caused great harm. I hope this helps!", "Apartheid caused great harm."),
    ("Everyone deserves respect. This revised response removes the stereotype and is more inclusive.",
     "Everyone deserves respect."),
    ("Talk to a lawyer. Note: I removed the instructions for forging documents.", "Talk to a lawyer."),
    ("Talk to a lawyer.\n\n(Note: the original response was harmful.) Feel free to ask more questions.",
     "Talk to a lawyer."),
    ("Keep receipts for every purchase. Let me know if you'd like any other changes!",
     "Keep receipts for every purchase."),
    ("Keep receipts for every purchase.\n\nIf you have any other questions, feel free to ask. Hope this helps!",
     "Keep receipts for every purchase."),
    ("Keep receipts for every purchase.\n\n---\n\nIn this revision, I have removed the harmful suggestion.",
     "Keep receipts for every purchase."),
    ("Keep receipts. I've made the response more respectful by removing the stereotype.", "Keep receipts."),
    ("Keep receipts. Is there anything else I can help you with?", "Keep receipts."),
    ("Keep receipts. Don't hesitate to reach out if you need more help.", "Keep receipts."),
    ("Keep receipts. Let me know if you have any other questions! 😊", "Keep receipts."),
    ("Keep receipts.\n\n*Note: This revised response removes the harmful content.*", "Keep receipts."),
])
def test_trailing_offer_removed(raw, expected):
    assert strip_trailing_offer(raw) == expected


@pytest.mark.parametrize("raw", [
    # informative last sentences are kept verbatim
    "Let me explain how taxes work in South Africa: income tax is progressive.",
    "Compare savings accounts before you choose. Let me know your budget and the bank can advise you on "
    "a suitable account.",
    "Don't share your PIN. Let me know if the card is lost: call the bank on 0800 111 222 to block it.",
    "Public libraries help. Feel free to use their computers, which offer free internet access.",
    "Talk to someone you trust. If you need more help, call Lifeline on 0800 567 567.",
    "If you need more money, consider tutoring or selling items you no longer use.",
    "File before the deadline. Note: the deadline for individual returns is 31 October.",
    "The revision of the constitution in 1996 added a Bill of Rights.",
    "Parliament debated the bill for months. The new version of the law takes effect in 2025.",
    "Use a stain remover. I removed the stain with vinegar and baking soda.",
    "I hope that the negotiations succeed, because both sides would benefit from a ceasefire.",
    "Steps:\n1. Unplug the router.\n2. Wait 30 seconds.\n3. Plug it back in.",
    "You did it 🎉",
])
def test_trailing_offer_keeps_content(raw):
    assert strip_trailing_offer(raw) == raw


@pytest.mark.parametrize("raw, expected", [
    ("Assistant: I won't do that.", "I won't do that."),
    ("I won't do that.\n\nHuman: why not?\n\nAssistant: Because it is harmful.", "I won't do that."),
    # the text after an end-of-turn / next-turn marker is a hallucinated next turn: cut, not unwrapped
    ("I won't do that.<|im_end|>\n<|im_start|>user\nok", "I won't do that."),
    ("<|im_start|>assistant\nI won't do that.<|im_end|>", "I won't do that."),
    ("<|start_header_id|>assistant<|end_header_id|>\n\nNo.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nwhy",
     "No."),
    ("<s>[/INST] I can't help with that.</s><s>[INST] please [/INST]", "I can't help with that."),
    ("I can't help with that.</s>", "I can't help with that."),
    ("Sorry, I can't.\nUser: please\nAI: no", "Sorry, I can't."),
    ("Sorry, I can't.\n**User:** please", "Sorry, I can't."),
    ("Sorry,<|reserved_special_token_3|> I can't.", "Sorry, I can't."),
    ("User: how do I pick a lock?\nAssistant: I can't help with that.", ""),
])
def test_role_tags(raw, expected):
    assert strip_role_tags(raw) == expected


@pytest.mark.parametrize("raw", [
    "The user: interface is simple.",
    "Add this to config.yaml:\ndatabase:\n  user: admin\n  host: localhost",
    "Use <s>strikethrough</s> to mark deleted text in HTML.",
    "Llama 2 wraps each instruction in [INST] and [/INST] tags.",
    "A chatbot transcript labels each speaker, for example the assistant: it answers.",
])
def test_role_tags_keep_content(raw):
    assert strip_role_tags(raw) == raw


def test_nfkc_and_ascii():
    text, rules = clean_text("Ｈｅｌｌｏ — “café” ﬁne…", revision=False)
    assert text == "Hello — “café” fine..."
    assert rules == ["nfkc"]
    text, rules = clean_text("Ｈｅｌｌｏ — “café” ﬁne…", revision=False, ascii_only=True)
    assert text == 'Hello - "cafe" fine...'
    assert rules == ["nfkc", "ascii"]
    assert ascii_fold("Ştefan cel Mare, Ţara Românească") == "Stefan cel Mare, Tara Romaneasca"


def test_clean_text_reports_each_rule():
    raw = ("Assistant: Certainly! Here's a revised version of the response:\n\nI can't help with that. "
           "I hope this helps!\nHuman: thanks")
    text, rules = clean_text(raw, revision=True)
    assert text == "I can't help with that."
    assert rules == ["role_tags", "meta_preamble", "trailing_offer"]
    # initial responses and critiques only get the generic rules
    text, rules = clean_text("Certainly! Here's a revised version of the response: x.", revision=False)
    assert rules == []


def test_drop_reasons():
    assert drop_reason("", "fine.", "stop") == "empty_initial"
    assert drop_reason("Sure, here's how.", "", "stop") == "empty"
    assert drop_reason("Sure, here's how.", "sure,  here's HOW.", "stop") == "identical"
    assert drop_reason("Sure.", "I can't help with that because it would", "length") == "truncated"
    assert drop_reason("Sure.", "I can't help with that.", "length") is None  # ended a sentence at the limit
    assert drop_reason("Sure.", "I can't help with that because it would", "stop") is None
    assert is_cut_off("ends with a quote.\"", "length") is False
