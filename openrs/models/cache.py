"""Where models built on this machine live: one directory per recipe, named by a hash of everything it depends on.

Two kinds are built locally: the random-init Qwen2 of ``model.tiny`` (openrs.models.tiny) and the SFT warm start of
``model.warm_start`` (openrs.training.warmstart). Their builders write into the paths computed here, and
:func:`openrs.models.resolve_model_path` reads from them, so finding a model never builds one. A changed recipe
(settings, or the builder's version below) gets a new directory; a stale one is never reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openrs.config.base import value_of

if TYPE_CHECKING:
    from openrs.config import ModelConfig, TinyModelConfig

# Bump when the tiny tokenizer/model recipe changes (openrs.models.tiny), so stale caches are not reused.
TINY_RECIPE_VERSION = 2
# Bump when the warm start's traces, their rendering or its training code change (openrs.training.warmstart).
WARM_START_RECIPE_VERSION = 1
# Written last into a finished warm start: its presence marks a complete build.
WARM_START_RECIPE_FILE = "openrs_warmstart.json"


def cache_root() -> Path:
    """Directory for locally built artefacts ($OPENRS_CACHE, else ~/.cache/openrs)."""
    return Path(os.environ.get("OPENRS_CACHE", Path.home() / ".cache" / "openrs"))


def plain(obj: Any) -> Any:
    """JSON-ready copy of a config dataclass (Enum members as their values)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    return value_of(obj)


def digest(settings: dict[str, Any]) -> str:
    """The recipe's short hash: 12 hex digits of SHA-256 over its sorted JSON."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def tiny_recipe(cfg: TinyModelConfig) -> dict[str, Any]:
    """Everything a tiny model depends on (its cache location left out)."""
    settings = {k: v for k, v in plain(cfg).items() if k != "cache_dir"}
    settings["recipe"] = TINY_RECIPE_VERSION
    return settings


def tiny_model_path(cfg: TinyModelConfig) -> Path:
    """Where the tiny model of ``cfg`` is (or will be) built."""
    root = Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "tiny"
    return root / f"qwen2-{digest(tiny_recipe(cfg))}"


def warm_start_recipe(model_cfg: ModelConfig) -> dict[str, Any]:
    """Everything the warm start depends on: its base model, its SFT settings, the builder's version."""
    assert model_cfg.warm_start is not None
    if model_cfg.tiny is not None:
        tiny = tiny_recipe(model_cfg.tiny)
        base: dict[str, Any] = {
            "tiny": {k: v for k, v in tiny.items() if k != "recipe"},
            "tiny_recipe": tiny["recipe"],
        }
    else:
        base = {"name_or_path": model_cfg.name_or_path, "revision": model_cfg.revision}
    sft = {k: v for k, v in plain(model_cfg.warm_start).items() if k != "cache_dir"}
    return {"base": base, "sft": sft, "recipe": WARM_START_RECIPE_VERSION}


def warm_start_path(model_cfg: ModelConfig) -> Path:
    """Where the warm start of ``model_cfg`` is (or will be) built."""
    if model_cfg.warm_start is None:
        raise ValueError("model.warm_start is not set")
    cache_dir = model_cfg.warm_start.cache_dir
    root = Path(cache_dir) if cache_dir else cache_root() / "warmstart"
    return root / f"sft-{digest(warm_start_recipe(model_cfg))}"
