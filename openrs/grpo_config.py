"""The run config, mapped onto TRL's ``GRPOConfig`` (and the DeepSpeed config it points at).

One function, :func:`to_grpo_config`, decides every argument TRL sees; docs/PARITY.md explains each one that
changes the update. The seed's behaviours that TRL 1.16 cannot express are listed in :data:`SEED_GAPS` and
recorded in every run's provenance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openrs.config import CONF_DIR, RunConfig
from openrs.config_base import value_of
from openrs.errors import UsageError
from openrs.precision import PrecisionPlan, precision_plan
from openrs.run_dir import RunDir

if TYPE_CHECKING:
    from trl import GRPOConfig

# What the seed's TRL (69ad852) did that no TRL 1.16 option reproduces (docs/PARITY.md, "No switch").
SEED_GAPS: tuple[str, ...] = (
    "prompts over max_prompt_length: the seed cut them from the left (dropping the system prompt); TRL 1.x has no "
    "prompt truncation, openrs drops such rows and logs the count",
    "data order: TRL 1.16's RepeatSampler draws a different permutation than 69ad852's RepeatRandomSampler for "
    "the same seed (same group structure: 12 prompts x 6 completions per step)",
    "log-probs: TRL 1.16 computes them with a tiled fused LM head, 69ad852 from full logits with "
    "selective_log_softmax; equal up to floating-point rounding",
    "generation: vLLM 0.7.2 (V0 engine, weights loaded in-process) vs vLLM 0.22-0.31 (V1 engine, weights sent "
    "over NCCL); sampling streams differ",
)


def deepspeed_path(cfg: RunConfig) -> Path | None:
    """``hardware.deepspeed`` as an absolute path: a relative one names a file under conf/ (``deepspeed/zero2.json``),
    else one relative to the working directory."""
    if not cfg.hardware.deepspeed:
        return None
    path = Path(cfg.hardware.deepspeed).expanduser()
    if path.is_absolute():
        return path
    return CONF_DIR / path if (CONF_DIR / path).is_file() else Path.cwd() / path


def read_deepspeed_config(cfg: RunConfig) -> dict[str, Any] | None:
    """The DeepSpeed JSON the run names (before TRL fills its ``auto`` values), or None."""
    path = deepspeed_path(cfg)
    if path is None:
        return None
    if not path.is_file():
        raise UsageError(f"hardware.deepspeed={cfg.hardware.deepspeed}: no such file ({path})")
    return json.loads(path.read_text())


def run_precision(cfg: RunConfig) -> PrecisionPlan:
    """Load dtype and master-weight placement of this run (see openrs.precision)."""
    ds = read_deepspeed_config(cfg)
    offload = bool(ds and (ds.get("zero_optimization", {}).get("offload_optimizer") or {}).get("device") in ("cpu", "nvme"))
    return precision_plan(cfg.model.dtype, cfg.hardware.bf16, cfg.hardware.deepspeed, offload_optimizer=offload)


def vllm_max_model_length(cfg: RunConfig) -> int:
    """Tokens vLLM must accept: the preset's fixed value, else the longest prompt plus the completion budget."""
    fixed = cfg.hardware.vllm_max_model_length
    return fixed if fixed is not None else cfg.dataset.max_prompt_length + cfg.grpo.max_completion_length


def _generation_kwargs(cfg: RunConfig) -> dict[str, Any] | None:
    """Extra sampling arguments; carries the sampling temperature when log-probs use another one.

    TRL 1.16 divides the logits by ``GRPOConfig.temperature`` both to sample and to score log-probs. Its
    ``generation_kwargs`` override the sampling arguments of transformers and vLLM (server and colocate) alike, so
    ``temperature=logprob_temperature`` plus ``generation_kwargs.temperature=grpo.temperature`` samples as the
    seed did and scores the raw logits as the seed did.
    """
    g = cfg.grpo
    kwargs = dict(g.generation_kwargs)
    if g.logprob_temperature is not None and g.logprob_temperature != g.temperature:
        kwargs["temperature"] = g.temperature
    return kwargs or None


def to_grpo_config(cfg: RunConfig, run_dir: Path) -> GRPOConfig:
    """Map the composed run config onto TRL's GRPOConfig (optimizer, hardware, GRPO math, generation, logging)."""
    from trl import GRPOConfig

    opt, hw, g, model = cfg.optimizer, cfg.hardware, cfg.grpo, cfg.model
    scheduler_kwargs: dict[str, Any] = {}
    if opt.lr_scheduler_type == "cosine_with_min_lr" and opt.min_lr_rate is not None:
        scheduler_kwargs["min_lr_rate"] = opt.min_lr_rate
    deepspeed = deepspeed_path(cfg)
    vllm: dict[str, Any] = {}
    if hw.use_vllm:
        vllm = {
            "use_vllm": True,
            "vllm_mode": value_of(hw.vllm_mode),
            "vllm_gpu_memory_utilization": hw.vllm_gpu_memory_utilization,
            "vllm_max_model_length": vllm_max_model_length(cfg),
            "vllm_server_host": hw.vllm_server_host,
            "vllm_server_timeout": hw.vllm_server_timeout_s,
            # The launcher fills both ports before the ranks start (0 here only where no server runs).
            **({"vllm_server_port": hw.vllm_server_port} if hw.vllm_server_port else {}),
            **({"vllm_group_port": hw.vllm_group_port} if hw.vllm_group_port else {}),
        }
    return GRPOConfig(
        output_dir=str(RunDir(run_dir).checkpoints),
        run_name=str(run_dir),
        seed=cfg.seed,
        # optimizer and schedule
        learning_rate=opt.lr,
        optim=opt.optim,
        lr_scheduler_type=opt.lr_scheduler_type,
        lr_scheduler_kwargs=scheduler_kwargs,
        warmup_steps=opt.warmup_ratio,  # a float in [0, 1) is a ratio of total steps in transformers 5
        weight_decay=opt.weight_decay,
        adam_beta1=opt.adam_beta1,
        adam_beta2=opt.adam_beta2,
        adam_epsilon=opt.adam_epsilon,
        max_grad_norm=opt.max_grad_norm,
        # hardware
        use_cpu=hw.use_cpu,
        bf16=hw.bf16,
        per_device_train_batch_size=hw.per_device_train_batch_size,
        gradient_accumulation_steps=hw.gradient_accumulation_steps,
        deepspeed=str(deepspeed) if deepspeed else None,
        dataloader_num_workers=hw.dataloader_num_workers,
        gradient_checkpointing=model.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if model.gradient_checkpointing else None,
        # generation
        num_generations=g.num_generations,
        temperature=g.logprob_temperature if g.logprob_temperature is not None else g.temperature,
        top_p=g.top_p,
        max_completion_length=g.max_completion_length,
        generation_kwargs=_generation_kwargs(cfg),
        steps_per_generation=g.steps_per_generation,
        # the update (docs/PARITY.md)
        beta=g.beta,
        epsilon=g.epsilon,
        epsilon_high=g.epsilon_high,
        loss_type=value_of(g.loss_type),
        scale_rewards=value_of(g.scale_rewards),
        num_iterations=g.num_iterations,
        mask_truncated_completions=g.mask_truncated_completions,
        vllm_importance_sampling_correction=g.importance_sampling_correction,
        use_bias_correction_kl=g.bias_corrected_kl,
        reward_weights=cfg.reward.weights(),
        max_steps=g.max_steps,
        num_train_epochs=g.num_train_epochs,
        # checkpoints and logging
        save_strategy=value_of(g.save_strategy),
        save_steps=g.save_steps,
        save_total_limit=g.save_total_limit,
        logging_steps=g.logging_steps,
        logging_first_step=True,
        log_completions=g.log_completions,
        report_to=["tensorboard"],
        disable_tqdm=True,
        ddp_backend=hw.ddp_backend,
        ddp_timeout=hw.ddp_timeout_s,
        **vllm,
    )
