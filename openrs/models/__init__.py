"""The policy model and its tokenizer: loaded from the hub or a directory, or built here (tiny random-init Qwen2,
char-level tokenizer, the R1-like chat format); where built models live (``cache.py``)."""

from openrs.models.loading import (
    attn_implementation,
    load_model,
    load_model_and_tokenizer,
    load_tokenizer,
    model_init_kwargs,
    resolve_model_path,
)
