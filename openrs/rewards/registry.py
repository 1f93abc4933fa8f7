"""Term registry: look up terms by name, validate their parameters, build the trainer's reward lists."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from openrs.rewards.config import to_reward_config
from openrs.rewards.terms import check_params, term_class
from openrs.rewards.verifier import SharedVerifier

_default_verifier: SharedVerifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> SharedVerifier:
    """The process-wide verifier used by `get_reward` when none is given (default settings, lazy pool)."""
    global _default_verifier
    with _default_lock:
        if _default_verifier is None:
            _default_verifier = SharedVerifier()
        return _default_verifier


def get_reward(name: str, verifier: SharedVerifier | None = None, **params: Any) -> Callable[..., list]:
    """A TRL-compatible reward callable named `name`, configured by `params`.

    Terms that need correctness use `verifier` (default: one process-wide verifier); terms built with the same
    verifier share one correctness pass per batch.
    """
    cls = term_class(name)
    full = check_params(name, params)
    if cls.needs_verifier and verifier is None:
        verifier = default_verifier()
    return cls(full, verifier if cls.needs_verifier else None)


def build_reward_funcs(reward_cfg: Any) -> tuple[list[Callable[..., list]], list[float]]:
    """Reward callables (one shared verifier) and their weights from a `reward` config (checked on the way in:
    openrs.rewards.config)."""
    cfg = to_reward_config(reward_cfg)
    verifier = SharedVerifier(cfg.verifier.workers, cfg.verifier.timeout_s, cfg.verifier.cache_size)
    funcs = [get_reward(name, verifier=verifier, **term.params) for name, term in cfg.terms.items()]
    return funcs, cfg.weights()
