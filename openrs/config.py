"""Typed schema of a run, registered with Hydra's ConfigStore.

Every YAML file under ``conf/`` is validated against these dataclasses when Hydra composes the
config, so a misspelt key (``optimizer.lrr=1``) or a value of the wrong type fails at composition,
naming the key, before any model loads. Enum fields make OmegaConf list the valid choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from openrs.rewards.config import RewardConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


class DType(str, Enum):
    """Weight dtype of the policy model."""

    bfloat16 = "bfloat16"
    float16 = "float16"
    float32 = "float32"
    auto = "auto"


class DatasetSource(str, Enum):
    """Where training problems come from."""

    hub = "hub"  # datasets.load_dataset(path, name, split=...)
    local = "local"  # a jsonl / json / parquet file on disk
    arithmetic = "arithmetic"  # generated offline, deterministic by seed
    mini_arith = "mini_arith"  # the a+b*c task of Open RS in miniature (training split only)


class VllmMode(str, Enum):
    """How TRL talks to vLLM when ``use_vllm`` is on."""

    server = "server"  # a separate `trl vllm-serve` process on its own GPU(s)
    colocate = "colocate"  # vLLM inside each training rank, sharing its GPU


class TokenizerKind(str, Enum):
    """How the tiny model's tokenizer is built."""

    bpe = "bpe"  # byte-level BPE trained on the spot on generated math text
    char = "char"  # one token per character (openrs.char_tokenizer); vocab_size is then ignored


@dataclass
class TinyModelConfig:
    """Random-init Qwen2 and a tokenizer built on the spot (BPE or char-level), for CPU runs and tests."""

    hidden_size: int = 96
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 256
    vocab_size: int = 512
    init_seed: int = 0
    cache_dir: str | None = None  # None: ~/.cache/openrs/tiny (or $OPENRS_CACHE/tiny)
    tokenizer: TokenizerKind = TokenizerKind.bpe


@dataclass
class MiniArithConfig:
    """The a+b*c task (openrs.minitask): operand ranges and the held-out split, by a hash of each triple."""

    a_min: int = 10
    a_max: int = 99
    bc_min: int = 2
    bc_max: int = 9
    held_out: int = 500  # triples with the smallest split hashes; never in training
    split_salt: str = "openrs-mini-v1"


@dataclass
class WarmStartConfig:
    """A short SFT stage on noisy-teacher traces (openrs.warmstart), cached on disk by its recipe."""

    steps: int = 600
    batch_size: int = 64
    lr: float = 3.0e-3
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    num_traces: int = 8192
    mistake_share: float = 0.5
    seed: int = 0
    system_prompt: str | None = None
    task: MiniArithConfig = field(default_factory=MiniArithConfig)
    cache_dir: str | None = None  # None: ~/.cache/openrs/warmstart (or $OPENRS_CACHE/warmstart)


@dataclass
class ModelConfig:
    name_or_path: str = MISSING
    revision: str | None = None
    dtype: DType = DType.bfloat16
    attn_implementation: str | None = None
    gradient_checkpointing: bool = True
    trust_remote_code: bool = False
    tiny: TinyModelConfig | None = None
    warm_start: WarmStartConfig | None = None  # SFT the model above first; the run starts from the result


@dataclass
class ArithmeticConfig:
    num_problems: int = 512
    max_operand: int = 20
    operators: list[str] = field(default_factory=lambda: ["+", "-", "*"])
    seed: int = 0


@dataclass
class DatasetConfig:
    source: DatasetSource = DatasetSource.hub
    path: str | None = None
    name: str | None = None
    split: str = "train"
    problem_column: str = "problem"
    solution_column: str = "solution"
    system_prompt: str | None = None
    max_prompt_length: int = 512
    max_samples: int | None = None
    shuffle_seed: int | None = None
    arithmetic: ArithmeticConfig = field(default_factory=ArithmeticConfig)
    mini_arith: MiniArithConfig = field(default_factory=MiniArithConfig)


@dataclass
class LoraConfig:
    r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    bias: str = "none"


@dataclass
class PeftConfig:
    enabled: bool = False
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class OptimizerConfig:
    lr: float = MISSING
    optim: str = "adamw_torch"
    lr_scheduler_type: str = "cosine_with_min_lr"
    min_lr_rate: float | None = 0.1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0


@dataclass
class HardwareConfig:
    name: str = MISSING
    gpu_type: str = "none"
    num_gpus: int = 0
    num_processes: int = 1
    price_per_gpu_hour: float = 0.0
    use_cpu: bool = False
    bf16: bool = False
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    deepspeed: str | None = None
    dataloader_num_workers: int = 0
    use_vllm: bool = False
    vllm_mode: VllmMode = VllmMode.server
    vllm_gpus: int = 0
    vllm_gpu_memory_utilization: float = 0.7
    vllm_max_model_length: int | None = None
    vllm_enforce_eager: bool = True
    vllm_server_port: int = 8000  # 0: a free port picked at launch
    vllm_server_host: str = "127.0.0.1"
    vllm_server_timeout_s: float = 600.0
    master_port: int = 0  # 0: a free port picked at launch
    ddp_backend: str | None = None  # None: nccl on GPUs, gloo on CPU


@dataclass
class GRPOSettings:
    num_generations: int = 8
    temperature: float = 0.7
    top_p: float = 1.0
    max_completion_length: int = MISSING
    max_steps: int = -1
    num_train_epochs: float = 1.0
    beta: float = 0.04
    epsilon: float = 0.2
    loss_type: str = "grpo"
    scale_rewards: str = "group"
    num_iterations: int = 1
    mask_truncated_completions: bool = False
    save_steps: int = 50
    save_total_limit: int | None = None
    logging_steps: int = 1
    log_completions: bool = False
    generation_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DiagnosticsConfig:
    """Text diagnostics, throughput, cost, samples and HParams in TensorBoard (openrs.tb)."""

    enabled: bool = True
    drift_min_letters: int = 2  # a completion with this many non-Latin/Greek letters counts as language drift
    samples_every: int = 50  # sample completions as TensorBoard text every N steps (0: never)
    num_samples: int = 4  # completions in each sample


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


def register_configs() -> None:
    """Store the schema; ``conf/config.yaml`` lists it first, so every group merged into it is validated."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Resolve interpolations and turn the composed DictConfig into typed dataclasses."""
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, RunConfig), f"expected RunConfig, got {type(obj).__name__}"
    return obj


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Compose the config as ``python -m openrs.train`` would, for tools and tests."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides or [], return_hydra_config=False)
