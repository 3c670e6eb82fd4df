"""Tiny causal language models built in code, for tests: no downloads, instant to run."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = ["<s>", "</s>", "<pad>"]


def byte_tokenizer(chat_template: str | None) -> PreTrainedTokenizerFast:
    """Byte-level tokenizer with no merges: one token per byte, plus three specials."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(SPECIALS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.add_bos_token = True
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def tiny_llama_config(vocab_size: int, eos_id: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=vocab_size - 3,
        eos_token_id=eos_id,
        pad_token_id=vocab_size - 1,
        tie_word_embeddings=False,
    )


def save_model(path: Path, tokenizer: PreTrainedTokenizerFast, model: LlamaForCausalLM) -> Path:
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return path


def random_llama(tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_llama_config(len(tokenizer), tokenizer.eos_token_id))
    with torch.no_grad():  # never end early, so lengths are predictable
        model.lm_head.weight[tokenizer.eos_token_id].fill_(0.0)
    return model
