"""Term registry: look up terms by name, validate their parameters, build the trainer's reward lists."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from openrs.rewards.params import validate_params
from openrs.rewards.terms import TERMS, Term
from openrs.rewards.verifier import SharedVerifier

REWARDS: tuple[str, ...] = tuple(TERMS)

_default_verifier: SharedVerifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> SharedVerifier:
    """The process-wide verifier used by `get_reward` when none is given (default settings, lazy pool)."""
    global _default_verifier
    with _default_lock:
        if _default_verifier is None:
            _default_verifier = SharedVerifier()
        return _default_verifier


def _term_class(name: str) -> type[Term]:
    if name not in TERMS:
        raise ValueError(f"unknown reward {name!r}; valid rewards: {', '.join(REWARDS)}")
    return TERMS[name]


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The term's full, validated parameters (defaults filled in); ValueError on a bad name or parameter."""
    return validate_params(name, _term_class(name).PARAMS, params)


def get_reward(name: str, verifier: SharedVerifier | None = None, **params: Any) -> Callable[..., list]:
    """A TRL-compatible reward callable named `name`, configured by `params`.

    Terms that need correctness use `verifier` (default: one process-wide verifier); terms built with the same
    verifier share one correctness pass per batch.
    """
    cls = _term_class(name)
    full = validate_params(name, cls.PARAMS, params)
    if cls.needs_verifier and verifier is None:
        verifier = default_verifier()
    return cls(full, verifier if cls.needs_verifier else None)


def _plain(cfg: Any) -> Any:
    """A plain, resolved dict from an OmegaConf node (interpolations such as ${max_len} resolved)."""
    try:
        from omegaconf import DictConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a core dependency
        return cfg
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def build_reward_funcs(reward_cfg: Any) -> tuple[list[Callable[..., list]], list[float]]:
    """Reward callables and weights from the composed `reward` node (`terms` + `verifier`), validated eagerly."""
    cfg = _plain(reward_cfg)
    if not isinstance(cfg, Mapping):
        raise ValueError(f"reward config must be a mapping with 'terms' and 'verifier', got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - {"terms", "verifier"})
    if unknown:
        raise ValueError(f"reward config: unknown key(s) {unknown}; valid keys: terms, verifier")
    terms = cfg.get("terms") or {}
    if not isinstance(terms, Mapping) or not terms:
        raise ValueError(f"reward config: 'terms' must name at least one of: {', '.join(REWARDS)}")
    vcfg = dict(cfg.get("verifier") or {})
    bad = sorted(set(vcfg) - {"workers", "timeout_s", "cache_size"})
    if bad:
        raise ValueError(f"reward.verifier: unknown key(s) {bad}; valid keys: workers, timeout_s, cache_size")
    verifier = SharedVerifier(**vcfg)

    funcs: list[Callable[..., list]] = []
    weights: list[float] = []
    for name, term in terms.items():
        term = dict(term or {})
        extra = sorted(set(term) - {"weight", "params"})
        if extra:
            raise ValueError(f"reward.terms.{name}: unknown key(s) {extra}; valid keys: weight, params")
        weight = term.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(f"reward.terms.{name}.weight must be a finite number, got {weight!r}")
        funcs.append(get_reward(name, verifier=verifier, **dict(term.get("params") or {})))
        weights.append(float(weight))
    return funcs, weights
