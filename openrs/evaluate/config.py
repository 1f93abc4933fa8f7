"""Typed schema of ``python -m openrs.evaluate``, registered with Hydra's ConfigStore.

``conf/evaluate.yaml`` holds the defaults and a comment per knob; it is checked against :class:`EvalConfig`
when Hydra composes it, so a misspelt key or an unknown benchmark fails before any model loads.

The app's config search path deliberately leaves out ``conf/``: the training tree has a ``model`` group
there, and Hydra would read ``model=knoveleng/Open-RS3`` as a choice in that group instead of a value. The
YAML file is therefore loaded here and stored in the ConfigStore as the primary config ``evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List  # noqa: UP035 - OmegaConf needs typing generics on Python 3.10

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from openrs.config import CONF_DIR, DType
from openrs.config.base import value_of
from openrs.evaluate.backends import VllmSettings
from openrs.evaluate.benchmarks import BENCHMARKS, PAPER_BENCHMARKS

EVAL_YAML = CONF_DIR / "evaluate.yaml"
CONFIG_NAME = "evaluate"

# One member per registered benchmark: OmegaConf rejects any other name and lists the valid ones.
Benchmark = Enum("Benchmark", {name: name for name in BENCHMARKS}, type=str)  # type: ignore[misc]


class BackendName(str, Enum):
    """Which generation backend samples the completions."""

    auto = "auto"  # vLLM where it is installed and a GPU is visible, else transformers
    transformers = "transformers"  # model.generate, CPU or GPU, batched
    vllm = "vllm"  # vLLM's offline engine (the seed's lighteval backend; needs the gpu extra)


class Protocol(str, Enum):
    """How many samples each problem gets."""

    seed = "seed"  # n_samples for every benchmark (the seed sampled once: the paper's numbers)
    robust = "robust"  # robust_samples per benchmark (more for the small sets), the seed's figure beside it


class CheckpointSelection(str, Enum):
    """Named selections of a run's checkpoints (a list of steps is the other choice)."""

    all = "all"
    final = "final"
    latest = "latest"


@dataclass
class EvalConfig:
    model: str | None = None
    revision: str | None = None
    tokenizer: str | None = None
    run: str | None = None
    checkpoints: Any = "all"
    benchmarks: List[Benchmark] = field(default_factory=lambda: list(PAPER_BENCHMARKS))  # noqa: UP006
    benchmark_dir: str | None = None
    benchmark_paths: Dict[str, str | None] = field(default_factory=dict)  # noqa: UP006
    limit: int | None = None
    n_samples: int = 1
    protocol: Protocol = Protocol.seed
    robust_samples: Dict[str, int] = field(default_factory=dict)  # noqa: UP006
    pass_k: List[int] | None = None  # noqa: UP006
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 32768
    seed: int = 0
    backend: BackendName = BackendName.auto
    batch_size: int = 8
    device: str | None = None
    dtype: DType = DType.auto
    trust_remote_code: bool = False
    vllm: VllmSettings = field(default_factory=VllmSettings)
    score_timeout: float | None = 10.0
    score_workers: int = 1
    confidence: float = 0.95
    n_resamples: int = 10_000
    output_dir: str | None = None
    tensorboard: bool = True
    label: str | None = None
    baseline: str | None = None
    baseline_revision: str | None = None


def register_configs() -> None:
    """Store the schema (``eval_schema``) and ``conf/evaluate.yaml`` as the primary config ``evaluate``."""
    cs = ConfigStore.instance()
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name=CONFIG_NAME, node=OmegaConf.load(EVAL_YAML))


def to_eval_config(cfg: DictConfig) -> EvalConfig:
    """The composed config as a typed :class:`EvalConfig` (``hydra`` section dropped)."""
    container = {k: v for k, v in cfg.items() if k != "hydra"}
    obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(EvalConfig), container))
    assert isinstance(obj, EvalConfig), f"expected EvalConfig, got {type(obj).__name__}"
    return obj


def benchmark_names(cfg: EvalConfig) -> list[str]:
    """The selected benchmarks as plain names, in order, without repeats."""
    names: list[str] = []
    for b in cfg.benchmarks:
        name = value_of(b)
        if name not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"benchmarks is empty; choose from {', '.join(BENCHMARKS)}")
    return names


def checkpoint_selection(value: Any) -> str | list[int]:
    """``checkpoints`` as ``all``/``final``/``latest`` or a sorted list of steps; anything else is an error."""
    if isinstance(value, (list, tuple, ListConfig)):
        steps = list(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        steps = [value]
    else:
        text = str(value_of(value))
        if text in CheckpointSelection.__members__:
            return text
        if text.isdigit():
            return [int(text)]
        raise ValueError(
            f"checkpoints={value!r}: use all, final, latest, a step (checkpoints=50) or a list (checkpoints=[50,100])"
        )
    if not steps or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps):
        raise ValueError(f"checkpoints={steps!r}: a list of steps must hold non-negative integers")
    return sorted(set(steps))


def validate(cfg: EvalConfig) -> None:
    """Checks that the schema cannot express; raised before anything heavy loads."""
    if (cfg.model is None) == (cfg.run is None):
        raise ValueError("give exactly one of model=<hub id or directory> or run=<training run dir>")
    names = benchmark_names(cfg)
    unknown = sorted(set(cfg.benchmark_paths) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"benchmark_paths has unknown benchmarks {unknown}; valid: {', '.join(BENCHMARKS)}")
    for name in names:
        path = cfg.benchmark_paths.get(name)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"benchmark_paths.{name}: no file at {path}")
    if cfg.benchmark_dir is not None and not Path(cfg.benchmark_dir).is_dir():
        raise FileNotFoundError(f"benchmark_dir: no directory at {cfg.benchmark_dir}")
    if cfg.run is not None:
        checkpoint_selection(cfg.checkpoints)
        if cfg.revision is not None:
            raise ValueError("revision= applies to model=, not to run= (a run's checkpoints are local)")
    if cfg.n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {cfg.n_samples}")
    bad = {k: v for k, v in cfg.robust_samples.items() if k not in BENCHMARKS or v < 1}
    if bad:
        raise ValueError(f"robust_samples {bad}: names must be benchmarks ({', '.join(BENCHMARKS)}), counts >= 1")
    if cfg.baseline_revision is not None and cfg.baseline is None:
        raise ValueError("baseline_revision= needs baseline=<hub id or directory>")
    bad_k = [k for k in cfg.pass_k or [] if not 1 <= k <= cfg.n_samples]
    if bad_k:
        raise ValueError(f"pass_k {bad_k} must lie in [1, n_samples={cfg.n_samples}]")
    if cfg.limit is not None and cfg.limit < 1:
        raise ValueError(f"limit must be >= 1 or null, got {cfg.limit}")
    if cfg.vllm.data_parallel_size != 1:
        raise ValueError(
            f"vllm.data_parallel_size={cfg.vllm.data_parallel_size}: must be 1. vLLM 0.31's offline LLM() refuses data "
            "parallelism in one process (it needs one process per replica); split a model over GPUs with "
            "vllm.tensor_parallel_size, or run replicas as separate jobs (--multirun over models or revisions)"
        )


def compose(overrides: list[str] | None = None) -> DictConfig:
    """Compose the config as ``python -m openrs.evaluate`` would (for tools and tests)."""
    from hydra import compose as hydra_compose
    from hydra import initialize

    register_configs()
    with initialize(version_base="1.3", config_path=None):
        return hydra_compose(config_name=CONFIG_NAME, overrides=overrides or [])
