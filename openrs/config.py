"""Typed schema of a run, registered with Hydra's ConfigStore.

Every YAML file under ``conf/`` is validated against these dataclasses when Hydra composes the
config, so a misspelt key (``optimizer.lrr=1``) or a value of the wrong type fails at composition,
naming the key, before any model loads. Enum fields make OmegaConf list the valid choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from openrs.config_base import require
from openrs.config_groups import (  # noqa: F401 - the schema's names, importable from here
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
from openrs.config_model import (  # noqa: F401
    DType,
    MiniArithConfig,
    ModelConfig,
    TinyModelConfig,
    TokenizerKind,
    WarmStartConfig,
)
from openrs.errors import UsageError
from openrs.rewards.config import RewardConfig


def _conf_dir() -> Path:
    """The config tree: ``conf/`` of a source checkout, else the copy a wheel installs as ``openrs/conf``."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"openrs configs not found in {here.parent / 'conf'} or {here / 'conf'}")


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


def validate_hardware(hw: HardwareConfig) -> None:
    """Fail early, naming the field, on a hardware preset that cannot be launched."""
    if hw.num_processes < 1:
        raise UsageError(f"hardware.num_processes={hw.num_processes}: must be >= 1")
    if hw.cpu_threads is not None and hw.cpu_threads < 1:
        raise UsageError(f"hardware.cpu_threads={hw.cpu_threads}: must be >= 1, or null for this job's share of the cores")
    server = hw.use_vllm and VllmMode(hw.vllm_mode) is VllmMode.server
    if hw.use_cpu:
        if hw.use_vllm:
            raise UsageError("hardware.use_vllm=true needs GPUs; hardware.use_cpu=true (choose hardware=cpu without vLLM)")
        return
    if server and hw.vllm_gpus < 1:
        raise UsageError("hardware.vllm_mode=server needs hardware.vllm_gpus >= 1 (the server's own GPU)")
    if not server and hw.vllm_gpus:
        raise UsageError(f"hardware.vllm_gpus={hw.vllm_gpus} only applies to vllm_mode=server (use_vllm=true)")
    if hw.use_vllm and not server and hw.vllm_enforce_eager:
        raise UsageError(
            "hardware.vllm_enforce_eager=true has no effect with vllm_mode=colocate: TRL 1.16 builds the colocated "
            "vLLM engine without that option; set it to null"
        )
    used = hw.num_processes + (hw.vllm_gpus if server else 0)
    if hw.num_gpus != used:
        raise UsageError(
            f"hardware.num_gpus={hw.num_gpus} but num_processes ({hw.num_processes}) + vllm_gpus "
            f"({hw.vllm_gpus if server else 0}) = {used}: every GPU of the preset must have a job"
        )
    if hw.ddp_backend not in (None, "nccl", "gloo"):
        raise UsageError(f"hardware.ddp_backend={hw.ddp_backend!r}: choose null, nccl or gloo")


def validate_run(cfg: RunConfig) -> None:
    """Checks that span groups; each error names the keys and the way out."""
    validate_hardware(cfg.hardware)
    g, hw, ds = cfg.grpo, cfg.hardware, cfg.dataset
    if DatasetSource(ds.source) in (DatasetSource.hub, DatasetSource.local) and not ds.path:
        source = DatasetSource(ds.source).value
        raise UsageError(
            f"dataset.path is required with dataset.source={source}: "
            + ("a .jsonl, .json or .parquet file (dataset=jsonl dataset.path=/data/problems.jsonl)" if source == "local"
               else "a hub dataset id")
        )
    if DatasetSource(ds.source) is DatasetSource.local and not Path(ds.path).expanduser().is_file():
        raise UsageError(f"dataset.path: no such file {ds.path} (a .jsonl, .json or .parquet file)")
    needed = cfg.dataset.max_prompt_length + g.max_completion_length
    if hw.use_vllm and hw.vllm_max_model_length is not None and hw.vllm_max_model_length < needed:
        raise UsageError(
            f"hardware.vllm_max_model_length={hw.vllm_max_model_length} < dataset.max_prompt_length "
            f"({cfg.dataset.max_prompt_length}) + grpo.max_completion_length ({g.max_completion_length}) = {needed}: "
            "vLLM would cut completions short; set it to null (derived) or >= " + str(needed)
        )
    steps = g.steps_per_generation or hw.gradient_accumulation_steps
    batch = hw.per_device_train_batch_size * hw.num_processes * steps
    if batch % g.num_generations:
        raise UsageError(
            f"a generation batch of {batch} completions (hardware.per_device_train_batch_size="
            f"{hw.per_device_train_batch_size} x num_processes={hw.num_processes} x grpo.steps_per_generation={steps}) "
            f"does not split into groups of grpo.num_generations={g.num_generations}: make it a multiple"
        )
    if "temperature" in g.generation_kwargs:
        raise UsageError("grpo.generation_kwargs.temperature: set grpo.temperature (sampling) instead")
    mismatched = g.logprob_temperature is not None and g.logprob_temperature != g.temperature
    if g.importance_sampling_correction and mismatched:
        raise UsageError(
            f"grpo.importance_sampling_correction=true compares vLLM's log-probs at grpo.temperature={g.temperature} "
            f"with the trainer's at grpo.logprob_temperature={g.logprob_temperature}: set logprob_temperature=null"
        )


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Resolve interpolations, turn the composed DictConfig into typed dataclasses, and check across groups."""
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, RunConfig), f"expected RunConfig, got {type(obj).__name__}"
    validate_run(obj)
    return obj


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Compose the config as ``python -m openrs.train`` would, for tools and tests."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides or [], return_hydra_config=False)
