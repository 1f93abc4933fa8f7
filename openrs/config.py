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


class TokenizerKind(str, Enum):
    """How the tiny model's tokenizer is built."""

    bpe = "bpe"  # byte-level BPE trained on the spot on generated math text
    char = "char"  # one token per character (openrs.char_tokenizer); vocab_size is then ignored


@dataclass
class TinyModelConfig:
    """Random-init Qwen2 and a tokenizer built on the spot (BPE or char-level), built and cached on disk.

    Tiny for CPU runs and tests (the defaults), or a real checkpoint's shape for GPU checks
    (``conf/model/qwen2_1_5b_random.yaml``).
    """

    hidden_size: int = 96
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 256
    vocab_size: int = 512  # entries the BPE tokenizer learns (merges of generated math text)
    tokenizer_fill_to: int | None = None  # pad the tokenizer with inert entries to this size; None: no filler
    model_vocab_size: int | None = None  # embedding rows; None: the tokenizer's size
    tie_word_embeddings: bool = True
    rope_theta: float = 10000.0
    max_position_embeddings: int = 2048
    save_dtype: DType = DType.float32  # dtype the random weights are written in
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
    threads: int = 2  # torch threads of the SFT stage: fixed, because the result depends on them
    task: MiniArithConfig = field(default_factory=MiniArithConfig)
    cache_dir: str | None = None  # None: ~/.cache/openrs/warmstart (or $OPENRS_CACHE/warmstart)


@dataclass
class ModelConfig:
    name_or_path: str = MISSING
    revision: str | None = None
    dtype: DType = DType.bfloat16
    attn_implementation: str | None = None  # flash_attention_2 falls back to sdpa (one warning) where it cannot run
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
    vllm_max_model_length: int | None = None  # None: dataset.max_prompt_length + grpo.max_completion_length
    vllm_enforce_eager: bool | None = None  # None: vLLM's default (CUDA graphs); server mode only
    vllm_server_port: int = 0  # 0: a free port picked at launch
    vllm_group_port: int = 0  # TRL's weight-sync group port; 0: a free port picked at launch
    vllm_server_host: str = "127.0.0.1"
    vllm_server_timeout_s: float = 600.0
    master_port: int = 0  # 0: a free port picked at launch
    ddp_backend: str | None = None  # None: nccl on GPUs, gloo on CPU
    ddp_timeout_s: int = 600  # a collective (or weight sync) waiting longer than this fails the rank
    cpu_threads: int | None = None  # torch threads per rank; None: $OMP_NUM_THREADS, else this job's share


@dataclass
class GRPOSettings:
    num_generations: int = 8
    temperature: float = 0.7
    top_p: float = 1.0
    max_completion_length: int = MISSING
    max_steps: int = -1
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


@dataclass
class DiagnosticsConfig:
    """Text diagnostics, throughput, cost, samples and HParams in TensorBoard (openrs.tb)."""

    enabled: bool = True
    drift_min_letters: int = 2  # a completion with this many non-Latin/Greek letters counts as language drift
    samples_every: int = 50  # sample completions as TensorBoard text every N steps (0: never)
    num_samples: int = 4  # completions in each sample


@dataclass
class EvalAfterConfig:
    """After training: the starting and the final model on a benchmark, greedy, compared problem by problem."""

    benchmark: str = MISSING  # a registered benchmark (openrs.evaluate.benchmarks), e.g. mini_heldout
    limit: int = 200  # its first N problems
    max_new_tokens: int = 32  # completion budget of each answer


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
