"""Schema of the ``dataset``, ``peft``, ``optimizer``, ``hardware``, ``grpo``, ``diagnostics`` and ``eval_after``
groups, one dataclass a group, each checking its own ranges when the config is built (``__post_init__``).

The values live in ``conf/`` (docs/ARCHITECTURE.md, "Defaults"); a dataclass default mirrors one so code can
build the dataclass directly, and tests/test_defaults.py keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

from openrs.config.base import require
from openrs.config.model import MiniArithConfig


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


class LossType(str, Enum):
    """TRL 1.16's loss aggregations (``GRPOConfig.loss_type``); docs/PARITY.md says which one the seed ran."""

    grpo = "grpo"  # mean over each sequence's tokens, then over sequences
    bnpo = "bnpo"  # sum over the micro-batch's tokens / their count (the seed's TRL 69ad852)
    dr_grpo = "dr_grpo"  # sum / (sequences x max_completion_length)
    dapo = "dapo"  # sum / tokens of the whole accumulated batch (TRL 1.16's default)
    cispo = "cispo"
    sapo = "sapo"
    luspo = "luspo"
    vespo = "vespo"


class SaveStrategy(str, Enum):
    """When the Trainer writes checkpoints (``TrainingArguments.save_strategy``)."""

    steps = "steps"  # every grpo.save_steps steps, and at the last step
    no = "no"  # never; run_training still saves the final model


class ScaleRewards(str, Enum):
    """What GRPO divides a reward's distance from its group mean by."""

    group = "group"  # the group's reward std (the seed)
    batch = "batch"  # the whole batch's reward std
    none = "none"  # nothing (Dr. GRPO)


@dataclass
class ArithmeticConfig:
    num_problems: int = 512
    max_operand: int = 20
    operators: list[str] = field(default_factory=lambda: ["+", "-", "*"])
    seed: int = 0


@dataclass
class DatasetConfig:
    source: DatasetSource = DatasetSource.hub
    path: str | None = "knoveleng/open-rs"
    name: str | None = None
    revision: str | None = None  # hub branch, tag or commit sha
    split: str = "train"
    problem_column: str = "problem"
    solution_column: str = "solution"
    system_prompt: str | None = None
    max_prompt_length: int = 512
    max_samples: int | None = None
    shuffle_seed: int | None = None
    arithmetic: ArithmeticConfig = field(default_factory=ArithmeticConfig)
    mini_arith: MiniArithConfig = field(default_factory=MiniArithConfig)

    def __post_init__(self) -> None:
        require("dataset.max_prompt_length", self.max_prompt_length, lambda v: v >= 1, ">= 1 (tokens)")
        require("dataset.max_samples", self.max_samples, lambda v: v >= 1, ">= 1, or null for every row")


@dataclass
class LoraConfig:
    """peft.LoraConfig's own arguments, built by Hydra's ``instantiate`` (``_target_``)."""

    _target_: str = "peft.LoraConfig"
    task_type: str = "CAUSAL_LM"
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

    def __post_init__(self) -> None:
        require("optimizer.lr (the lr sweep axis feeds it)", self.lr, lambda v: v > 0, "> 0")
        require("optimizer.min_lr_rate", self.min_lr_rate, lambda v: 0 <= v <= 1, "in [0, 1], a fraction of lr")
        require("optimizer.warmup_ratio", self.warmup_ratio, lambda v: 0 <= v < 1, "in [0, 1)")
        require("optimizer.weight_decay", self.weight_decay, lambda v: v >= 0, ">= 0")
        for name in ("adam_beta1", "adam_beta2"):
            require(f"optimizer.{name}", getattr(self, name), lambda v: 0 <= v < 1, "in [0, 1)")
        require("optimizer.adam_epsilon", self.adam_epsilon, lambda v: v > 0, "> 0")
        require("optimizer.max_grad_norm", self.max_grad_norm, lambda v: v >= 0, ">= 0 (0: no clipping)")


@dataclass
class HardwareConfig:
    name: str = MISSING
    gpu_type: str = "A40"
    nodes: int = 1  # nodes one run spans (SLURM); node 0 also runs the vLLM server
    num_gpus: int = 4
    num_processes: int = 3
    price_per_gpu_hour: float = 0.44
    use_cpu: bool = False
    bf16: bool = True
    per_device_train_batch_size: int = 6
    gradient_accumulation_steps: int = 4
    deepspeed: str | None = "deepspeed/zero2.json"
    dataloader_num_workers: int = 0
    use_vllm: bool = True
    vllm_mode: VllmMode = VllmMode.server
    vllm_gpus: int = 1
    vllm_gpu_memory_utilization: float = 0.7
    vllm_max_model_length: int | None = None  # None: dataset.max_prompt_length + grpo.max_completion_length
    vllm_enforce_eager: bool | None = None  # None: vLLM's default (CUDA graphs); server mode only
    vllm_server_port: int = 0  # 0: a free port picked at launch
    vllm_group_port: int = 0  # TRL's weight-sync group port; 0: a free port picked at launch
    vllm_server_host: str = "127.0.0.1"
    vllm_server_timeout_s: float = 600.0
    vllm_cpu_kv_cache_gb: int = 1  # vLLM on CPU: host memory for its KV cache (VLLM_CPU_KVCACHE_SPACE), GiB
    master_port: int = 0  # 0: a free port picked at launch
    ddp_backend: str | None = None  # None: nccl on GPUs, gloo on CPU
    ddp_timeout_s: int = 600  # a collective (or weight sync) waiting longer than this fails the rank
    save_timeout_s: int = 3600  # the other ranks wait this long at a save for rank 0's write and fsync
    check_memory: bool = True  # refuse a GPU run whose estimated peak exceeds the GPU (openrs.config.memory)
    cpu_threads: int | None = None  # torch threads per rank; None: $OMP_NUM_THREADS, else this job's share

    def __post_init__(self) -> None:
        for name in ("nodes", "num_processes", "per_device_train_batch_size", "gradient_accumulation_steps"):
            require(f"hardware.{name}", getattr(self, name), lambda v: v >= 1, ">= 1")
        for name in ("num_gpus", "vllm_gpus", "dataloader_num_workers", "price_per_gpu_hour"):
            require(f"hardware.{name}", getattr(self, name), lambda v: v >= 0, ">= 0")
        require(
            "hardware.vllm_gpu_memory_utilization",
            self.vllm_gpu_memory_utilization,
            lambda v: 0 < v <= 1,
            "in (0, 1], a share of the GPU's memory",
        )
        for name in ("vllm_server_port", "vllm_group_port", "master_port"):
            require(
                f"hardware.{name}",
                getattr(self, name),
                lambda v: 0 <= v <= 65535,
                "a TCP port, or 0 for a free one",
            )
        for name in ("vllm_server_timeout_s", "ddp_timeout_s", "save_timeout_s", "vllm_cpu_kv_cache_gb"):
            require(f"hardware.{name}", getattr(self, name), lambda v: v > 0, "> 0 (seconds)")
        require(
            "hardware.cpu_threads",
            self.cpu_threads,
            lambda v: v >= 1,
            ">= 1, or null for this job's share of the cores",
        )

    def ranks_on_node(self, node: int) -> int:
        """Training ranks on ``node``: node 0 leaves ``vllm_gpus`` to the vLLM server, the others train on them too."""
        server_gpus = self.vllm_gpus if self.use_vllm and VllmMode(self.vllm_mode) is VllmMode.server else 0
        return self.num_processes + (server_gpus if node > 0 and not self.use_cpu else 0)

    @property
    def world_size(self) -> int:
        """Training ranks over all the run's nodes."""
        return sum(self.ranks_on_node(node) for node in range(self.nodes))


@dataclass
class GRPOSettings:
    num_generations: int = 6
    temperature: float = 0.7
    top_p: float = 1.0
    max_completion_length: int = MISSING
    max_steps: int = 500
    num_train_epochs: float = 1.0
    # The update's math; conf/parity/seed.yaml sets each to the seed's TRL (69ad852), parity=trl to TRL 1.16's.
    beta: float = 0.04
    epsilon: float = 0.2
    epsilon_high: float | None = None  # None: = epsilon (symmetric clip)
    loss_type: LossType = LossType.bnpo
    scale_rewards: ScaleRewards = ScaleRewards.group
    num_iterations: int = 1
    mask_truncated_completions: bool = False
    logprob_temperature: float | None = 1.0  # temperature of the trained log-probs; None: = temperature
    steps_per_generation: int | None = 1  # micro-steps one generation feeds; None: gradient_accumulation_steps
    importance_sampling_correction: bool = False  # TRL's vLLM-vs-trainer sequence ratio on the loss
    bias_corrected_kl: bool = False  # multiply the k3 KL term by the importance ratio
    save_strategy: SaveStrategy = SaveStrategy.steps
    save_steps: int = 50
    save_total_limit: int | None = None
    keep_full_state: int | None = 1  # newest N checkpoints keep optimizer states; None: all
    logging_steps: int = 1
    log_completions: bool = False
    generation_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(
            "grpo.num_generations",
            self.num_generations,
            lambda v: v >= 2,
            ">= 2 (a group needs two to compare)",
        )
        require("grpo.temperature", self.temperature, lambda v: v > 0, "> 0")
        require("grpo.top_p", self.top_p, lambda v: 0 < v <= 1, "in (0, 1]")
        require(
            "grpo.max_completion_length (the max_len sweep axis feeds it)",
            self.max_completion_length,
            lambda v: v >= 1,
            ">= 1 (tokens)",
        )
        require("grpo.max_steps", self.max_steps, lambda v: v >= 1 or v == -1, ">= 1, or -1 for num_train_epochs")
        require("grpo.num_train_epochs", self.num_train_epochs, lambda v: v > 0, "> 0")
        require("grpo.beta", self.beta, lambda v: v >= 0, ">= 0")
        require("grpo.epsilon", self.epsilon, lambda v: v > 0, "> 0")
        require("grpo.epsilon_high", self.epsilon_high, lambda v: v > 0, "> 0, or null for epsilon")
        require("grpo.num_iterations", self.num_iterations, lambda v: v >= 1, ">= 1")
        require(
            "grpo.logprob_temperature",
            self.logprob_temperature,
            lambda v: v > 0,
            "> 0, or null for temperature",
        )
        require("grpo.steps_per_generation", self.steps_per_generation, lambda v: v >= 1, ">= 1, or null")
        for name in ("save_steps", "logging_steps"):
            require(f"grpo.{name}", getattr(self, name), lambda v: v >= 1, ">= 1")
        for name in ("save_total_limit", "keep_full_state"):
            require(f"grpo.{name}", getattr(self, name), lambda v: v >= 1, ">= 1, or null for all")


@dataclass
class DiagnosticsConfig:
    """Text diagnostics, throughput, cost, samples and HParams in TensorBoard (openrs.records.tb)."""

    text: bool = True  # lang drift, closed </think>, boxed answers and accuracy of each batch
    drift_min_letters: int = 2  # a completion with this many non-Latin/Greek letters counts as language drift
    samples_every: int = 50  # sample completions as TensorBoard text every N steps (0: never)
    num_samples: int = 4  # completions in each sample

    def __post_init__(self) -> None:
        require("diagnostics.drift_min_letters", self.drift_min_letters, lambda v: v >= 1, ">= 1")
        require("diagnostics.samples_every", self.samples_every, lambda v: v >= 0, ">= 0 (0: never)")
        require("diagnostics.num_samples", self.num_samples, lambda v: v >= 1, ">= 1")


@dataclass
class EvalAfterConfig:
    """After training: the starting and the final model on a benchmark, greedy, compared problem by problem."""

    benchmark: str = MISSING  # a registered benchmark (openrs.evaluate.benchmarks), e.g. mini_heldout
    limit: int = 200  # its first N problems
    max_new_tokens: int = 32  # completion budget of each answer

    def __post_init__(self) -> None:
        require("eval_after.limit", self.limit, lambda v: v >= 1, ">= 1")
        require("eval_after.max_new_tokens", self.max_new_tokens, lambda v: v >= 1, ">= 1")
