"""Load the policy model and its tokenizer: a hub id, a local directory, or a tiny random-init Qwen2.

The tiny model is written to disk once (cached by its settings) and then loaded through the same
``from_pretrained`` path as a real checkpoint, so CPU runs and tests exercise the real loading code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

    from openrs.config import ModelConfig, TinyModelConfig

log = logging.getLogger(__name__)

# Bump when the tiny tokenizer/model recipe changes, so stale caches are not reused.
TINY_RECIPE_VERSION = 2

# R1-like control tokens in ASCII. The closing think tag with its newlines is one token, as the
# R1 tokenizer keeps `</think>` whole: a random-init model then hits the format by chance, and
# GRPO has a signal to learn from.
BOS, EOS, PAD = "<|begin|>", "<|end|>", "<|endoftext|>"  # Qwen2 pads with <|endoftext|>
USER, ASSISTANT = "<|User|>", "<|Assistant|>"
THINK_TOKENS = ["\n</think>\n", "<think>\n", "</think>", "<think>", "\\boxed{"]

# One user turn after an optional system text; the generation prompt opens the think block, as
# DeepSeek-R1-Distill's template does, so completions start inside <think>.
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}" + USER + "{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}" + ASSISTANT + "{{ message['content'] }}{{ eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "<think>\n{% endif %}"
)


def cache_root() -> Path:
    """Directory for locally built artefacts ($OPENRS_CACHE, else ~/.cache/openrs)."""
    return Path(os.environ.get("OPENRS_CACHE", Path.home() / ".cache" / "openrs"))


def _tiny_corpus() -> list[str]:
    """Text the tiny tokenizer learns its merges from: arithmetic problems and R1-style answers."""
    from openrs.data import generate_arithmetic

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


def build_tiny_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on the spot and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

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
    tok.add_tokens(THINK_TOKENS)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",
        model_max_length=2048,
    )
    wrapped.chat_template = TINY_CHAT_TEMPLATE
    return wrapped


def build_tiny_model(
    cfg: TinyModelConfig, vocab_size: int, eos_id: int, pad_id: int, bos_id: int
) -> PreTrainedModel:
    """A random-init Qwen2ForCausalLM with the given shape."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    torch.manual_seed(cfg.init_seed)
    return Qwen2ForCausalLM(config)


def tiny_model_dir(cfg: TinyModelConfig) -> Path:
    """Build (once) and return the directory holding the tiny model and tokenizer."""
    settings = {k: getattr(v, "value", v) for k, v in vars(cfg).items() if k != "cache_dir"}
    settings["recipe"] = TINY_RECIPE_VERSION
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "tiny"
    target = root / f"qwen2-{digest}"
    if (target / "config.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Build in a temporary sibling and rename: concurrent runs never see a half-written model.
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        if settings["tokenizer"] == "char":
            from openrs.char_tokenizer import build_char_tokenizer

            tokenizer = build_char_tokenizer()
        else:
            tokenizer = build_tiny_tokenizer(cfg.vocab_size)
        model = build_tiny_model(
            cfg, len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id
        )
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "openrs_tiny.json").write_text(json.dumps(settings, indent=2))
        try:
            staging.rename(target)
        except OSError:
            if not (target / "config.json").exists():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("built tiny model at %s", target)
    return target


def resolve_model_path(cfg: ModelConfig) -> str:
    """Hub id or directory that ``from_pretrained`` should read."""
    if cfg.warm_start is not None:
        from openrs.warmstart import warm_start_dir

        return str(warm_start_dir(cfg))
    if cfg.tiny is not None:
        return str(tiny_model_dir(cfg.tiny))
    return cfg.name_or_path


def load_tokenizer(cfg: ModelConfig) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        resolve_model_path(cfg), revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation appends on the right
    return tokenizer


def model_init_kwargs(cfg: ModelConfig) -> dict:
    """Keyword arguments for ``AutoModelForCausalLM.from_pretrained``."""
    kwargs: dict = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code}
    dtype = cfg.dtype.value if hasattr(cfg.dtype, "value") else str(cfg.dtype)
    if dtype != "auto":
        import torch

        kwargs["dtype"] = getattr(torch, dtype)
    else:
        kwargs["dtype"] = "auto"
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    return kwargs


def load_model(cfg: ModelConfig) -> PreTrainedModel:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(resolve_model_path(cfg), **model_init_kwargs(cfg))


def load_model_and_tokenizer(cfg: ModelConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The policy and its tokenizer, from the hub, a local directory, or the tiny recipe."""
    return load_model(cfg), load_tokenizer(cfg)
