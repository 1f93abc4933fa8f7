"""Structured config (schema) of the `reward` group; openrs.config registers it with Hydra's ConfigStore.

The one place a reward config is checked: OmegaConf rejects unknown keys and mistyped values against these
dataclasses, and `RewardConfig.__post_init__` checks what a type cannot say (term names, each term's
parameters, the verifier's ranges), so a bad reward fails when the config is built, before any model loads.

`terms` defaults to empty on purpose: OmegaConf merges dicts, so a non-empty schema default would leak its
terms into every `reward=<option>` (e.g. `reward=cosine` would also get `accuracy`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, Optional  # noqa: UP035 - OmegaConf needs typing generics on Python 3.10

from openrs.errors import UsageError


@dataclass
class RewardTermConfig:
    """One reward term: its weight in the sum GRPO optimizes, and its parameters (validated per term)."""

    weight: float = 1.0
    params: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006


@dataclass
class VerifierConfig:
    """The shared math verifier used by accuracy, cosine and length."""

    workers: Optional[int] = None  # noqa: UP045 - worker processes; None = CPU cores available to this rank
    timeout_s: float = 5.0  # hard wall-clock limit per completion; a completion past it scores as wrong
    cache_size: int = 65536  # verdicts kept (completion, gold, normalization); a step needs batch x settings


@dataclass
class RewardConfig:
    """The `reward` group: registered term name -> weight and params, plus the verifier settings."""

    terms: Dict[str, RewardTermConfig] = field(default_factory=dict)  # noqa: UP006
    verifier: VerifierConfig = field(default_factory=VerifierConfig)

    def __post_init__(self) -> None:
        from openrs.rewards.terms import REWARDS, check_params
        from openrs.rewards.verifier import check_settings

        if not self.terms:
            raise UsageError(f"reward.terms: must name at least one of: {', '.join(REWARDS)}")
        for name, term in self.terms.items():
            if name not in REWARDS:
                raise UsageError(f"reward.terms.{name}: unknown reward {name!r}; valid rewards: {', '.join(REWARDS)}")
            if not math.isfinite(term.weight):
                raise UsageError(f"reward.terms.{name}.weight={term.weight}: must be a finite number")
            try:
                check_params(name, term.params)
            except ValueError as exc:
                raise UsageError(f"reward.terms.{name}.params: {exc}") from None
        try:
            check_settings(self.verifier.workers, self.verifier.timeout_s, self.verifier.cache_size)
        except ValueError as exc:
            raise UsageError(f"reward.{exc}") from None

    def weights(self) -> list[float]:
        """Each term's weight, in term order: GRPOConfig.reward_weights."""
        return [float(t.weight) for t in self.terms.values()]


def to_reward_config(cfg: Any) -> RewardConfig:
    """A checked RewardConfig from itself, an OmegaConf node (interpolations resolved) or a plain mapping."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(cfg, RewardConfig):
        return cfg
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(cfg, Mapping):
        raise UsageError(f"reward config must be a mapping with 'terms' and 'verifier', got {type(cfg).__name__}")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RewardConfig), dict(cfg)))
    except OmegaConfBaseException as exc:  # an unknown key or a mistyped value: OmegaConf names it
        raise UsageError(f"reward config: {str(exc).splitlines()[0]} (at reward.{exc.full_key})") from None
