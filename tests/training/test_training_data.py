"""Dataset mixing on a `generate`-format dir built from real Blue Dot SA rows (tests/data)."""

from __future__ import annotations

import hashlib

import pytest

from cai_bench.errors import UserError
from cai_bench.training.data import load_mixture


def test_sft_mixture_reads_messages_and_records_provenance(cai_dataset):
    mix = load_mixture({str(cai_dataset): 1.0}, "sft", ["train", "test"], seed=1)
    assert mix.train.column_names == ["messages"] and len(mix.train) == 8 and len(mix.eval) == 4
    assert mix.train[0]["messages"][0]["role"] == "user"
    f = cai_dataset / "sft" / "train.jsonl"
    src = mix.sources[0]
    assert src["file"] == str(f) and src["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert mix.constitutions == ["south_africa"]


def test_dpo_mixture_is_conversational_and_fraction_subsamples(cai_dataset):
    mix = load_mixture({str(cai_dataset): 0.5}, "dpo", ["train"], seed=3, max_train_samples=100)
    assert len(mix.train) == 4 and mix.eval is None
    row = mix.train[0]
    assert set(row) == {"prompt", "chosen", "rejected"}
    assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    again = load_mixture({str(cai_dataset): 0.5}, "dpo", ["train"], seed=3)
    assert again.train["chosen"] == mix.train["chosen"]


def test_missing_column_is_a_user_error(tmp_path):
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "train.jsonl").write_text('{"text": "hi"}\n')
    with pytest.raises(UserError, match=r"missing column\(s\) \['messages'\]"):
        load_mixture({str(tmp_path): 1.0}, "sft", ["train"], seed=0)


def test_generate_style_conversational_prefs_and_empty_test_split(tmp_path):
    """The generation engineer's export writes chat-turn prefs and may leave test.jsonl empty."""
    import json

    (tmp_path / "prefs").mkdir()
    row = {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "good"}],
           "rejected": [{"role": "assistant", "content": "bad"}], "principle_id": "p1"}
    (tmp_path / "prefs" / "train.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "prefs" / "test.jsonl").write_text("")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"constitution": "romania"}))
    mix = load_mixture({str(tmp_path): 1.0}, "dpo", ["train", "test"], seed=0)
    assert mix.train[0]["chosen"] == row["chosen"] and mix.eval is None and mix.constitutions == ["romania"]


def test_few_shot_context_turns_survive_mixing(tmp_path):
    """Few-shot chats (system + example exchanges before the real question) reach the trainer intact.

    `generate --few-shot` keeps its few-shot context out of the exported rows, but hub sets and
    hand-made data may put it in the prompt (DPO) or in `messages` (SFT); the loader must neither
    drop nor reorder those turns, also when mixed with a string-pair source it converts to chat.
    """
    import json

    shots = [{"role": "system", "content": "Answer with ubuntu in mind."},
             {"role": "user", "content": "Example question"}, {"role": "assistant", "content": "Example answer"}]
    few, plain = tmp_path / "few", tmp_path / "plain"
    for d in (few, plain):
        (d / "prefs").mkdir(parents=True)
    (few / "sft").mkdir()
    pref = {"prompt": [*shots, {"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "good"}],
            "rejected": [{"role": "assistant", "content": "bad"}]}
    (few / "prefs" / "train.jsonl").write_text(json.dumps(pref) + "\n")
    (plain / "prefs" / "train.jsonl").write_text(json.dumps({"prompt": "q2", "chosen": "g2", "rejected": "b2"}) + "\n")
    sft = {"messages": [*shots, {"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}]}
    (few / "sft" / "train.jsonl").write_text(json.dumps(sft) + "\n")

    mix = load_mixture({str(few): 1.0, str(plain): 1.0}, "dpo", ["train"], seed=0)
    rows = {r["chosen"][0]["content"]: r for r in mix.train}
    assert rows["good"] == pref
    assert rows["g2"]["prompt"] == [{"role": "user", "content": "q2"}]
    assert load_mixture({str(few): 1.0}, "sft", ["train"], seed=0).train[0] == sft
