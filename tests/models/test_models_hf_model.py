"""The in-process HF backend behind the model contract, on the real SmolLM2:
it answers exactly as the chat engine it wraps, scores log-likelihoods through
lm-eval's HFLM, and builds each engine only when it is used."""

from __future__ import annotations

import math
from pathlib import Path

from cai_bench.models import Model, open_checkpoint, resolve_checkpoint
from cai_bench.models.chat import ChatOptions, GenParams

CONVS = [[{"role": "user", "content": "Name one colour of the South African flag."}],
         [{"role": "user", "content": "Say hello in Romanian."}]]


def test_chat_answers_match_the_wrapped_chat_engine(smollm2_dir: Path) -> None:
    from cai_bench.models.chat.hf_chat import HFChat

    params = GenParams(max_new_tokens=12)
    model = open_checkpoint(str(smollm2_dir), ChatOptions(device="cpu", batch_size=2))
    try:
        assert isinstance(model, Model) and model.loglik and not model.structured
        got = [c.text for c in model.chat(CONVS, params)]
    finally:
        model.close()
    direct = HFChat(str(smollm2_dir), batch_size=2, device="cpu")
    try:
        assert got == [c.text for c in direct.chat(CONVS, params)]
    finally:
        direct.close()


def test_loglikelihood_through_lm_eval(smollm2_dir: Path) -> None:
    from lm_eval.models.huggingface import HFLM

    model = open_checkpoint(resolve_checkpoint(str(smollm2_dir)), ChatOptions(device="cpu", batch_size=2), load=False)
    try:
        assert model._chat is None  # nothing loaded for chat: run and HHH only need the lm-eval LM
        lls = model.loglikelihood([("The capital of France is", " Paris"), ("The capital of France is", " banana")])
        assert isinstance(model.lm_eval_lm(), HFLM) and model._chat is None
        (paris, _), (banana, _) = lls
        assert math.isfinite(paris) and paris < 0 and paris > banana
    finally:
        model.close()
