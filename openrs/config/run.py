"""Typed schema of a run, registered with Hydra's ConfigStore.

Every YAML file under ``conf/`` is validated against these dataclasses when Hydra composes the
config, so a misspelt key (``optimizer.lrr=1``) or a value of the wrong type fails at composition,
naming the key, before any model loads. Enum fields make OmegaConf list the valid choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from openrs.config.base import require
from openrs.config.groups import (
    DatasetConfig,
    DiagnosticsConfig,
    EvalAfterConfig,
    GRPOSettings,
    HardwareConfig,
    OptimizerConfig,
    PeftConfig,
)
from openrs.config.model import ModelConfig
from openrs.rewards.config import RewardConfig


def _conf_dir() -> Path:
    """The config tree: ``conf/`` of a source checkout, else the copy a wheel installs as ``openrs/conf``."""
    package = Path(__file__).resolve().parent.parent
    candidates = (package.parent / "conf", package / "conf")
    for candidate in candidates:
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"openrs configs not found in {' or '.join(map(str, candidates))}")


CONF_DIR = _conf_dir()


@dataclass
class RunConfig:
    experiment: str = MISSING
    lr: float = MISSING
    max_len: int = MISSING
    seed: int = 42
    resume: str | None = None
    system_prompts: dict[str, str] = field(default_factory=dict)
    model: ModelConfig = MISSING
    dataset: DatasetConfig = MISSING
    reward: RewardConfig = MISSING
    peft: PeftConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    hardware: HardwareConfig = MISSING
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    eval_after: EvalAfterConfig | None = None

    def __post_init__(self) -> None:
        require("lr", self.lr, lambda v: v > 0, "> 0 (the peak learning rate)")
        require("max_len", self.max_len, lambda v: v >= 1, ">= 1 (completion tokens)")


def register_configs() -> None:
    """Store the schema; ``conf/config.yaml`` lists it first, so every group merged into it is validated."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
