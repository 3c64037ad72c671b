"""Tiny in-process models shared by the tests: real layouts, random weights, seconds on a CPU."""

from __future__ import annotations

from pathlib import Path


def build_tiny_llama(tokenizer_dir: Path, dest: Path, max_position_embeddings: int = 512) -> Path:
    """A 2-layer, 64-wide Llama with the tokenizer (and chat template) of `tokenizer_dir`, saved to `dest`.

    Its text is noise: it stands in for a model wherever a test is about plumbing, not quality.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=max_position_embeddings,
                      tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


def random_lora(base_dir: Path, out: Path, seed: int) -> Path:
    """A seeded LoRA adapter with non-zero weights on a real base: an "SFT" checkpoint whose
    answers differ from the base's, without training."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False, task_type="CAUSAL_LM"))
    model.save_pretrained(out)
    return out
