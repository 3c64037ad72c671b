"""Helpfulness scorer: a tiny Llama + v_head saved the way Starling-RM-7B-alpha's repo
stores it (the card's GPTRewardModel state dict in pytorch_model.bin), and a tiny
AutoModelForSequenceClassification reward model with a chat template."""

from __future__ import annotations

import pytest

from cai_bench.errors import UserError
from cai_bench.harness.scorers import ScoreInput, build_scorer

TEXTS = ["How do I bake bread?", "Mix flour, water, yeast and salt, knead, proof and bake.",
         "I will not help.", "Bread is made from dough. Bake it at 220 C for 30 minutes.", "no",
         "Here is a recipe with detailed steps for a sourdough loaf."] * 3


def _llama_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(TEXTS + ["[INST] [/INST]"], trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


class CardRewardModel:
    """The model card's GPTRewardModel layout: causal LM as `model`, backbone as `transformer`, `v_head`."""

    def __new__(cls, causal_lm):
        import torch

        class GPTRewardModel(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = causal_lm
                self.transformer = causal_lm.model
                self.v_head = torch.nn.Linear(causal_lm.config.hidden_size, 1, bias=False)

        return GPTRewardModel()


@pytest.fixture(scope="module")
def starling(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("starling")
    tok = _llama_tokenizer()
    torch.manual_seed(0)
    # widths of 64 keep bitsandbytes' 4-bit blocks whole (for the load_in_4bit test)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                      bos_token_id=1, eos_token_id=2, pad_token_id=None)
    base = LlamaForCausalLM(cfg).eval()
    base.save_pretrained(root / "base")  # plays meta-llama/Llama-2-7b-chat-hf
    tok.save_pretrained(root / "base")
    rm = CardRewardModel(LlamaForCausalLM(cfg))  # trained weights differ from the base
    with torch.no_grad():
        for p in rm.parameters():
            p.normal_(0.0, 0.3)
    (root / "rm").mkdir()
    torch.save(rm.state_dict(), root / "rm" / "pytorch_model.bin")  # as in the hub repo
    (root / "rm_nohead").mkdir()
    sd = {k: v for k, v in rm.state_dict().items() if not k.startswith("v_head")}
    torch.save(sd, root / "rm_nohead" / "pytorch_model.bin")
    return root, rm, tok


def _scorer(root, home, **extra):
    s = build_scorer("helpfulness", {"model": str(root / "rm"), "base_model": str(root / "base"),
                                     "device": "cpu", **extra})
    assert s.available() == (True, "")
    s.load()
    return s


def _inputs(n=8):
    return [ScoreInput(key=f"k{i}", prompt=TEXTS[0], response=TEXTS[1 + i % 5] * (1 + i % 3)) for i in range(n)]


def _card_reward(rm, tok, prompt, response):
    """The card's get_reward: right padding to max_length, reward before the first pad token."""
    import torch

    text = f"<s>[INST] {prompt} </s> [/INST] {response}</s>"
    tok.pad_token = tok.unk_token
    enc = tok([text], truncation=True, max_length=200, padding="max_length", return_tensors="pt")
    with torch.no_grad():
        hidden = rm.transformer(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])[0]
        values = rm.v_head(hidden).squeeze(-1)
    ids = enc["input_ids"][0]
    c_ind = (ids == tok.unk_token_id).nonzero()[0].item()
    return values[0, c_ind - 1].item()


def test_starling_reward_matches_card_and_depends_on_response(starling, home):
    root, rm, tok = starling
    s = _scorer(root, home, batch_size=8)
    rows = s.score(_inputs())
    values = [r.value for r in rows]
    assert all(r.status == "ok" and r.metric == "reward" for r in rows)
    assert len(set(round(v, 5) for v in values[:5])) == 5  # changes with the response
    assert s.texts(_inputs(1))[0] == f"<s>[INST] {TEXTS[0]} </s> [/INST] {TEXTS[1]}</s>"
    for x, v in zip(_inputs(3), values):
        assert v == pytest.approx(_card_reward(rm, tok, x.prompt, x.response), abs=1e-4)


def test_starling_padding_side_and_batch_size_do_not_change_rewards(starling, home):
    root, _, _ = starling
    ref = [r.value for r in _scorer(root, home, batch_size=8, padding_side="right").score(_inputs())]
    left = [r.value for r in _scorer(root, home, batch_size=8, padding_side="left").score(_inputs())]
    one = [r.value for r in _scorer(root, home, batch_size=1).score(_inputs())]
    assert left == pytest.approx(ref, abs=1e-4)
    assert one == pytest.approx(ref, abs=1e-4)


def test_starling_checkpoint_without_v_head_is_refused(starling, home):
    root, _, _ = starling
    s = build_scorer("helpfulness", {"model": str(root / "rm_nohead"), "base_model": str(root / "base"),
                                     "device": "cpu"})
    with pytest.raises(UserError, match="v_head.weight"):
        s.load()


def test_starling_truncates_from_the_left_with_count(starling, home):
    root, _, _ = starling
    s = _scorer(root, home, max_length=40)
    short = ScoreInput("b", "hi", "ok")
    assert len(s._rm.tokenizer(s.texts([short])[0])["input_ids"]) <= 40
    rows = s.score([ScoreInput("a", TEXTS[0], TEXTS[3] * 5), short])
    assert rows[0].detail == {"truncated": True} and rows[1].detail is None and s.truncated == 1


@pytest.fixture(scope="module")
def seqcls_rm(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tok = _llama_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, num_labels=1, pad_token_id=0)
    return _save_random(LlamaForSequenceClassification(cfg), tok, tmp_path_factory.mktemp("seqcls"))


CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"


def _save_random(model, tok, root):
    """Weights drawn wide enough that rewards differ clearly between texts."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    model.save_pretrained(root)
    tok.save_pretrained(root)
    return root


def test_sequence_classification_reward_model(seqcls_rm):
    cfg = {"model": str(seqcls_rm), "kind": "sequence_classification", "device": "cpu"}
    s = build_scorer("helpfulness", {**cfg, "batch_size": 8})
    s.load()
    assert s.texts(_inputs(1))[0] == f"<|user|>{TEXTS[0]}</s><|assistant|>{TEXTS[1]}</s>"
    ref = [r.value for r in s.score(_inputs())]
    assert len(set(round(v, 5) for v in ref[:5])) == 5
    left = build_scorer("helpfulness", {**cfg, "batch_size": 8, "padding_side": "left"})
    one = build_scorer("helpfulness", {**cfg, "batch_size": 1})
    assert [r.value for r in left.score(_inputs())] == pytest.approx(ref, abs=1e-4)
    assert [r.value for r in one.score(_inputs())] == pytest.approx(ref, abs=1e-4)
    # the reward is read at the conversation's real last token (its closing </s>), even
    # though that token is the eos the tokenizer would otherwise pad with
    assert ref[0] == pytest.approx(_native_rewards(seqcls_rm, s.texts(_inputs(1)), last_hidden=True)[0], abs=1e-4)


def _native_rewards(root, texts, *, last_hidden=False):
    """The model's own forward on each text alone (no padding, its own positions)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(root)
    m = AutoModelForSequenceClassification.from_pretrained(root).eval()
    out = []
    with torch.no_grad():
        for t in texts:
            ids = torch.tensor([tok(t, add_special_tokens=False)["input_ids"]])
            if last_hidden:  # decoder: the score head on the final position
                out.append(m.score(m.model(input_ids=ids).last_hidden_state)[0, -1, 0].item())
            else:
                out.append(m(input_ids=ids).logits[0, 0].item())
    return out


@pytest.fixture(scope="module")
def roberta_rm(tmp_path_factory):
    """An encoder reward model: RoBERTa places positions from its padding itself."""
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    tok = _llama_tokenizer()
    tok.add_special_tokens({"pad_token": "<pad>"})
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(2)
    cfg = RobertaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_labels=1, pad_token_id=tok.pad_token_id,
                        max_position_embeddings=tok.pad_token_id + 256)  # RoBERTa: padding_idx must fit
    return _save_random(RobertaForSequenceClassification(cfg), tok, tmp_path_factory.mktemp("roberta_rm"))


def test_encoder_reward_model_keeps_its_own_positions(roberta_rm):
    cfg = {"model": str(roberta_rm), "kind": "sequence_classification", "device": "cpu", "batch_size": 8}
    s = build_scorer("helpfulness", cfg)
    s.load()
    ref = [r.value for r in s.score(_inputs())]
    assert ref == pytest.approx(_native_rewards(roberta_rm, s.texts(_inputs())), abs=1e-4)
    left = build_scorer("helpfulness", {**cfg, "padding_side": "left"})  # ignored: the head reads token 0
    assert [r.value for r in left.score(_inputs())] == pytest.approx(ref, abs=1e-4)


def test_starling_loads_in_4bit(starling, home):
    pytest.importorskip("bitsandbytes")
    root, _, _ = starling
    ref = [r.value for r in _scorer(root, home).score(_inputs(4))]
    try:
        s = _scorer(root, home, load_in_4bit=True, dtype="float32")
    except UserError as exc:  # bitsandbytes without a usable backend here
        pytest.skip(str(exc))
    from bitsandbytes.nn import Linear4bit

    assert any(isinstance(m, Linear4bit) for m in s._rm.backbone.modules())
    got = [r.value for r in s.score(_inputs(4))]
    assert all(r == r for r in got)  # finite, quantized: close to but not equal to the fp32 rewards
    assert got == pytest.approx(ref, abs=0.5 + 0.2 * max(abs(v) for v in ref))


def test_uncached_hub_reward_model_is_unavailable_offline(starling):
    root, _, _ = starling
    s = build_scorer("helpfulness", {"model": "berkeley-nest/Starling-RM-7B-alpha", "base_model": str(root / "base")})
    ok, reason = s.available()
    assert not ok and "Starling-RM-7B-alpha" in reason and "HF_HUB_OFFLINE" in reason
