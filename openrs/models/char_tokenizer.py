"""A character-level tokenizer for the miniature task: one token per printable ASCII character plus R1's tags.

Built with the ``tokenizers`` library and wrapped as a transformers ``PreTrainedTokenizerFast`` with the tiny
model's chat template, so ``save_pretrained`` writes it and plain ``AutoTokenizer.from_pretrained(dir)`` reads
it back. The R1 tags and ``\\boxed{`` are single tokens, as in the tiny BPE tokenizer: the format reward
counts ``\\n</think>\\n``, which the model then emits in one step.

It is a byte-level BPE with an alphabet-only vocabulary and no merges, so every character is one token.
That shape matters: for a directory whose ``config.json`` says ``qwen2``, transformers 5 loads the tokenizer
as ``Qwen2Tokenizer``, which keeps the vocabulary and merges of ``tokenizer.json`` but installs its own
byte-level pre-tokenizer and decoder. A word-level model would lose its spaces and newlines there; a
byte-level vocabulary without merges tokenizes the same either way. Characters outside the alphabet have no
token and are dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# Printable ASCII and the newline: every character the task, its traces and the R1 prompts use.
ALPHABET: tuple[str, ...] = (*(chr(i) for i in range(32, 127)), "\n")


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """One id per special token, per character of ``ALPHABET`` and per R1 tag."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    from openrs.models.chat_format import ASSISTANT, BOS, EOS, PAD, THINK_TOKENS, USER, wrap_in_chat_format

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    symbols = [byte_level.pre_tokenize_str(ch)[0][0] for ch in ALPHABET]  # ' ' -> 'Ġ', '\n' -> 'Ċ', ...
    specials = [PAD, BOS, EOS, USER, ASSISTANT]
    vocab = {token: i for i, token in enumerate([*specials, *symbols])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    tok.add_tokens(THINK_TOKENS)  # not special: decoding with skip_special_tokens keeps the tags
    return wrap_in_chat_format(tok, 2048)
