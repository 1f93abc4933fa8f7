"""Structured config (schema) of the `reward` group; openrs.config registers it with Hydra's ConfigStore.

`terms` defaults to empty on purpose: OmegaConf merges dicts, so a non-empty schema default would leak its
terms into every `reward=<option>` (e.g. `reward=cosine` would also get `accuracy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional  # noqa: UP035 - OmegaConf needs typing generics on Python 3.10


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
