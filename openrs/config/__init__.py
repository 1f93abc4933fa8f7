"""The typed schema of a run (one dataclass a config group), composed from ``conf/`` by Hydra and checked.

``from openrs.config import RunConfig, compose, to_run_config, ...``: the names below are the package's face;
the schema lives in ``run.py`` (RunConfig), ``model.py`` and ``groups.py`` (the groups), ``compose.py`` (compose, type and check
across groups), ``precision.py`` (load dtype and where master weights live) and ``base.py`` (what they share).
"""

from openrs.config.base import require, value_of
from openrs.config.compose import compose, to_run_config, validate_hardware, validate_run
from openrs.config.groups import (
    ArithmeticConfig,
    DatasetConfig,
    DatasetSource,
    DiagnosticsConfig,
    EvalAfterConfig,
    GRPOSettings,
    HardwareConfig,
    LoraConfig,
    LossType,
    OptimizerConfig,
    PeftConfig,
    SaveStrategy,
    ScaleRewards,
    VllmMode,
)
from openrs.config.model import (
    DType,
    MiniArithConfig,
    ModelConfig,
    TinyModelConfig,
    TokenizerKind,
    WarmStartConfig,
)
from openrs.config.run import CONF_DIR, RunConfig, register_configs
