"""Schema of the ``model`` config group: the policy's source, and the locally built models (tiny, warm start).

Paired with ``conf/model/*.yaml``; the values live there (docs/ARCHITECTURE.md, "Defaults"), a dataclass default
mirrors one so code can build the dataclass directly, and tests/test_defaults.py keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from omegaconf import MISSING

from openrs.config.base import require


class DType(str, Enum):
    """Weight dtype of the policy model."""

    bfloat16 = "bfloat16"
    float16 = "float16"
    float32 = "float32"
    auto = "auto"


class TokenizerKind(str, Enum):
    """How the tiny model's tokenizer is built."""

    bpe = "bpe"  # byte-level BPE trained on the spot on generated math text
    char = "char"  # one token per character (openrs.models.char_tokenizer); vocab_size is then ignored


@dataclass
class TinyModelConfig:
    """Random-init Qwen2 and a tokenizer built on the spot (BPE or char-level), built and cached on disk.

    Tiny for CPU runs and tests (the defaults), or a real checkpoint's shape for GPU checks
    (``conf/model/qwen2_1_5b_random.yaml``).
    """

    hidden_size: int = 96
    num_hidden_layers: int = 2
    num_attention_heads: int = 3
    num_key_value_heads: int = 3
    intermediate_size: int = 256
    vocab_size: int = 512  # entries the BPE tokenizer learns (merges of generated math text)
    tokenizer_fill_to: int | None = None  # pad the tokenizer with inert entries to this size; None: no filler
    model_vocab_size: int | None = None  # embedding rows; None: the tokenizer's size
    tie_word_embeddings: bool = True
    rope_theta: float = 10000.0
    max_position_embeddings: int = 2048
    save_dtype: DType = DType.float32  # dtype the random weights are written in
    init_seed: int = 0
    cache_dir: str | None = None  # None: ~/.cache/openrs/tiny (or $OPENRS_CACHE/tiny)
    tokenizer: TokenizerKind = TokenizerKind.bpe

    def __post_init__(self) -> None:
        for name in (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "intermediate_size",
            "vocab_size",
        ):
            require(f"model.tiny.{name}", getattr(self, name), lambda v: v >= 1, ">= 1")


@dataclass
class MiniArithConfig:
    """The a+b*c task (openrs.data.mini_arith): operand ranges and the held-out split, by a hash of each triple."""

    a_min: int = 10
    a_max: int = 99
    bc_min: int = 2
    bc_max: int = 9
    held_out: int = 500  # triples with the smallest split hashes; never in training
    split_salt: str = "openrs-mini-v1"


@dataclass
class WarmStartConfig:
    """A short SFT stage on noisy-teacher traces (openrs.training.warmstart), cached on disk by its recipe."""

    steps: int = 600
    batch_size: int = 64
    lr: float = 3.0e-3
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    num_traces: int = 8192
    mistake_share: float = 0.5
    seed: int = 0
    system_prompt: str | None = None
    threads: int = 2  # torch threads of the SFT stage: fixed, because the result depends on them
    task: MiniArithConfig = field(default_factory=MiniArithConfig)
    cache_dir: str | None = None  # None: ~/.cache/openrs/warmstart (or $OPENRS_CACHE/warmstart)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "num_traces", "threads"):
            require(f"model.warm_start.{name}", getattr(self, name), lambda v: v >= 1, ">= 1")
        require("model.warm_start.lr", self.lr, lambda v: v > 0, "> 0")
        require("model.warm_start.mistake_share", self.mistake_share, lambda v: 0 <= v <= 1, "in [0, 1]")


@dataclass
class ModelConfig:
    name_or_path: str = MISSING
    revision: str | None = None
    dtype: DType = DType.bfloat16
    attn_implementation: str | None = "flash_attention_2"  # falls back to sdpa (one warning) where it cannot run
    gradient_checkpointing: bool = True
    trust_remote_code: bool = False
    tiny: TinyModelConfig | None = None
    warm_start: WarmStartConfig | None = None  # SFT the model above first; the run starts from the result
