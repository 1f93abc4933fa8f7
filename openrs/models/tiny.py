"""Random-init Qwen2 models built locally (``model.tiny``): tiny for CPU runs and tests, or a real checkpoint's
shape for the GPU check, with a tokenizer trained on the spot (BPE) or fixed (char), cached on disk by recipe.

Written once with ``save_pretrained`` and then loaded like any checkpoint (openrs.models), so CPU runs and tests
exercise the real loading code.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from openrs.config.base import value_of
from openrs.models.cache import tiny_model_path, tiny_recipe
from openrs.models.chat_format import ASSISTANT, BOS, EOS, PAD, THINK_TOKENS, USER, wrap_in_chat_format
from openrs.records.atomic import publish_dir

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import PreTrainedModel, PreTrainedTokenizerFast, Qwen2Config

    from openrs.config import TinyModelConfig

log = logging.getLogger(__name__)


def _torch_dtype(dtype: object) -> torch.dtype:
    """torch dtype of a ``DType`` value; ``auto`` has no meaning for weights that do not exist yet."""
    import torch

    name = str(value_of(dtype))
    if name not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"model.tiny.save_dtype={name}: choose float32, bfloat16 or float16")
    return getattr(torch, name)


def _tiny_corpus() -> list[str]:
    """Text the tiny tokenizer learns its merges from: arithmetic problems and R1-style answers."""
    from openrs.data.arithmetic import generate_arithmetic

    rows = generate_arithmetic(num_problems=400, max_operand=50, operators=["+", "-", "*"], seed=1234)
    lines = [
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it.",
        "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags.",
        "Let me think step by step. First, Next, Finally, Therefore, the final answer is",
    ]
    for row in rows:
        lines.append(row["problem"])
        lines.append(f"<think>\nWe compute it.\n</think>\n{row['solution']}")
    return lines


def _filler_word(i: int) -> str:
    """The i-th inert vocabulary entry: a space and 3+ lowercase letters, in byte-level form ("Ġ" is the space)."""
    n, word = i + 703, ""  # 703 is the first 3-letter number in bijective base 26
    while n:
        n, r = divmod(n - 1, 26)
        word = chr(ord("a") + r) + word
    return "Ġ" + word


def _fill_vocab(tok: Tokenizer, size: int) -> Tokenizer:
    """The same BPE tokenizer with inert entries appended to its vocabulary until it holds ``size``.

    No merge produces them, so encoding is unchanged; a random-init model that samples their ids decodes to
    pseudo-words (about 5 characters a token) instead of the nothing that ids past the vocabulary decode to.
    """
    from tokenizers import Tokenizer

    data = json.loads(tok.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    i = 0
    while len(vocab) < size:
        word = _filler_word(i)
        i += 1
        if word not in vocab:
            vocab[word] = len(vocab)
    return Tokenizer.from_str(json.dumps(data))


def build_tiny_tokenizer(
    vocab_size: int, fill_to: int | None = None, model_max_length: int = 2048
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on the spot and wrap it for transformers.

    ``vocab_size`` entries are learnt from generated math text; ``fill_to`` pads the vocabulary with inert
    entries up to that many (the R1 think tokens stay the last ids).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if fill_to is not None and fill_to < vocab_size:
        raise ValueError(f"model.tiny.tokenizer_fill_to={fill_to} < model.tiny.vocab_size={vocab_size}")
    specials = [PAD, BOS, EOS, USER, ASSISTANT]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(THINK_TOKENS),
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_tiny_corpus(), trainer=trainer)
    if fill_to is not None:
        tok = _fill_vocab(tok, fill_to - len(THINK_TOKENS))
    tok.add_tokens(THINK_TOKENS)
    return wrap_in_chat_format(tok, model_max_length)


def tiny_model_config(cfg: TinyModelConfig, tokenizer_size: int, eos_id: int, pad_id: int, bos_id: int) -> Qwen2Config:
    """The Qwen2 config of a random-init model: ``cfg``'s shape, embeddings for ``model_vocab_size`` ids."""
    from transformers import Qwen2Config

    vocab = cfg.model_vocab_size if cfg.model_vocab_size is not None else tokenizer_size
    if vocab < tokenizer_size:
        raise ValueError(
            f"model.tiny.model_vocab_size={vocab} < the tokenizer's {tokenizer_size} entries: the model could not "
            "embed every token; raise it or set it to null"
        )
    return Qwen2Config(
        vocab_size=vocab,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_theta)},
        tie_word_embeddings=cfg.tie_word_embeddings,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )


def build_tiny_model(
    cfg: TinyModelConfig, vocab_size: int, eos_id: int, pad_id: int, bos_id: int, device: str | None = None
) -> PreTrainedModel:
    """A random-init Qwen2ForCausalLM with the given shape; ``device="meta"`` builds shapes only, no weights."""
    import contextlib

    import torch
    from transformers import Qwen2ForCausalLM

    config = tiny_model_config(cfg, vocab_size, eos_id, pad_id, bos_id)
    torch.manual_seed(cfg.init_seed)
    with torch.device(device) if device else contextlib.nullcontext():
        return Qwen2ForCausalLM(config)


def tiny_model_dir(cfg: TinyModelConfig) -> Path:
    """Build (once) and return the directory holding the tiny model and tokenizer."""
    settings = tiny_recipe(cfg)
    target = tiny_model_path(cfg)
    if (target / "config.json").exists():
        return target
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    # Build in a temporary sibling and rename: concurrent runs never see a half-written model.
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        if settings["tokenizer"] == "char":
            from openrs.models.char_tokenizer import build_char_tokenizer

            tokenizer = build_char_tokenizer()
        else:
            tokenizer = build_tiny_tokenizer(cfg.vocab_size, cfg.tokenizer_fill_to, cfg.max_position_embeddings)
        model = build_tiny_model(
            cfg, len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id
        )
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.to(_torch_dtype(cfg.save_dtype))
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "openrs_tiny.json").write_text(json.dumps(settings, indent=2))
        publish_dir(staging, target, finished="config.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("built tiny model at %s", target)
    return target
