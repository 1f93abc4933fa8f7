"""The character-level tokenizer: round trip, single-token R1 tags, and the same ids after a plain reload."""

from __future__ import annotations

from openrs.config import TinyModelConfig
from openrs.models.char_tokenizer import ALPHABET, build_char_tokenizer
from openrs.models.chat_format import THINK_TOKENS
from openrs.models.tiny import tiny_model_dir

TEXT = "What is $37 + 4 \\times 8$?\n4*8=32\n37+32=69\n</think>\n\\boxed{69}"


def test_round_trip_one_token_per_character():
    tok = build_char_tokenizer()
    plain = "".join(ALPHABET)
    ids = tok.encode(plain, add_special_tokens=False)
    assert len(ids) == len(plain)
    assert tok.decode(ids) == plain
    assert len(tok) == len(ALPHABET) + 5 + len(THINK_TOKENS)  # characters, PAD/BOS/EOS/User/Assistant, tags


def test_r1_tags_and_boxed_are_single_tokens():
    tok = build_char_tokenizer()
    ids = tok.encode(TEXT, add_special_tokens=False)
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces.count("\n</think>\n") == 1 and pieces.count("\\boxed{") == 1
    assert tok.decode(ids, skip_special_tokens=True) == TEXT  # the tags are not special: decoding keeps them
    turns = [{"role": "user", "content": "x"}]
    prompt = tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    assert prompt == "<|begin|><|User|>x<|Assistant|><think>\n"
    assert tok.convert_ids_to_tokens(tok.encode(prompt, add_special_tokens=False))[-1] == "<think>\n"


def test_plain_reload_from_a_qwen2_dir_gives_the_same_ids(tmp_path):
    """transformers loads a qwen2 dir's tokenizer as Qwen2Tokenizer; the ids must not change."""
    from transformers import AutoTokenizer

    built = build_char_tokenizer()
    model_dir = tiny_model_dir(TinyModelConfig(tokenizer="char", cache_dir=str(tmp_path)))
    loaded = AutoTokenizer.from_pretrained(model_dir)
    text = f"{built.bos_token}<|User|>{TEXT}<|Assistant|><think>\n{TEXT}{built.eos_token}"
    assert loaded(text)["input_ids"] == built(text)["input_ids"]
    assert loaded.decode(loaded(text)["input_ids"]) == text
    assert loaded.chat_template == built.chat_template


def test_char_and_bpe_tiny_models_are_cached_apart(tmp_path):
    bpe = tiny_model_dir(TinyModelConfig(cache_dir=str(tmp_path)))
    char = tiny_model_dir(TinyModelConfig(tokenizer="char", cache_dir=str(tmp_path)))
    assert bpe != char
