"""A policy's architecture without its weights: parameter count and the sizes the memory plan needs.

Read from the model's ``config.json`` alone (a few kB from the hub, at the run's revision) or, for a locally built
random-init model, from its recipe; the parameters are counted on a model built on the meta device, so nothing is
allocated and any architecture transformers knows is counted the way it will load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openrs.config.memory import ModelShape
from openrs.errors import UsageError

if TYPE_CHECKING:
    from openrs.config import ModelConfig


def architecture(cfg: ModelConfig) -> Any:
    """The policy's transformers config, without downloading weights (or building the tiny model)."""
    from transformers import AutoConfig

    if cfg.tiny is not None:  # the warm start keeps the tiny model's shape
        from openrs.models.tiny import tiny_model_config

        t = cfg.tiny
        vocab = t.model_vocab_size or max(t.vocab_size, t.tokenizer_fill_to or 0)
        return tiny_model_config(t, vocab, 0, 0, 0)
    try:
        return AutoConfig.from_pretrained(
            cfg.name_or_path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"model.name_or_path={cfg.name_or_path}: its config.json could not be read ({type(exc).__name__}); "
            "download the model once where the hub is reachable, or point model.name_or_path at a local copy"
        ) from exc


def model_shape(cfg: ModelConfig) -> ModelShape:
    """Parameters (counted on the meta device), layers, hidden and MLP widths of the policy."""
    import torch
    from transformers import AutoModelForCausalLM

    config = architecture(cfg)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=cfg.trust_remote_code)
    text = config.get_text_config()
    return ModelShape(
        params=model.num_parameters(),
        layers=text.num_hidden_layers,
        hidden=text.hidden_size,
        intermediate=getattr(text, "intermediate_size", 4 * text.hidden_size),
    )
