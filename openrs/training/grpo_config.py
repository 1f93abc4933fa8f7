"""The run config, mapped onto TRL's ``GRPOConfig`` (and the DeepSpeed config it points at).

One function, :func:`to_grpo_config`, decides every argument TRL sees; docs/PARITY.md explains each one that
changes the update. The seed's behaviours that TRL 1.16 cannot express are listed in :data:`SEED_GAPS` and
recorded in every run's provenance.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openrs.config import CONF_DIR, RunConfig
from openrs.config.base import value_of
from openrs.config.precision import PrecisionPlan, precision_plan
from openrs.errors import UsageError
from openrs.records.run_dir import RunDir

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


def offloads_optimizer(cfg: RunConfig) -> bool:
    """Whether the run's DeepSpeed config keeps the optimizer in host memory (or NVMe): ZeRO optimizer offload."""
    ds = read_deepspeed_config(cfg)
    return bool(
        ds and (ds.get("zero_optimization", {}).get("offload_optimizer") or {}).get("device") in ("cpu", "nvme")
    )


def run_precision(cfg: RunConfig) -> PrecisionPlan:
    """Load dtype and master-weight placement of this run (see openrs.config.precision)."""
    offload = offloads_optimizer(cfg)
    return precision_plan(cfg.model.dtype, cfg.hardware.bf16, cfg.hardware.deepspeed, offload_optimizer=offload)


def vllm_max_model_length(cfg: RunConfig) -> int:
    """Tokens vLLM must accept: the preset's fixed value, else the longest prompt plus the completion budget."""
    fixed = cfg.hardware.vllm_max_model_length
    return fixed if fixed is not None else cfg.dataset.max_prompt_length + cfg.grpo.max_completion_length


def vllm_dtype(cfg: RunConfig) -> str:
    """The dtype vLLM generates in: the model's (``model.dtype``), for the server (``--dtype``) and, on CPU, the
    colocated engine (openrs.training.vllm_cpu; on GPUs TRL builds it with vLLM's ``auto``, docs/PARITY.md)."""
    return str(value_of(cfg.model.dtype))


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


# Hardware fields GRPOConfig shares by name but that are set only with vLLM on (below), and derived there.
_VLLM_FIELDS = frozenset(
    {
        "use_vllm",
        "vllm_mode",
        "vllm_gpu_memory_utilization",
        "vllm_max_model_length",
        "vllm_server_port",
        "vllm_group_port",
        "vllm_server_host",
    }
)


def _same_named(group: Any, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The fields of a config group that GRPOConfig has under the same name (the schema uses TRL's and
    transformers' own names wherever it can), as plain values; ``skip`` is set explicitly by the caller."""
    from trl import GRPOConfig

    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    return {
        f.name: value_of(getattr(group, f.name))
        for f in dataclasses.fields(group)
        if f.name in names and f.name not in skip
    }


def to_grpo_config(cfg: RunConfig, run_dir: Path) -> GRPOConfig:
    """The run config as TRL's GRPOConfig: every same-named field as it is, then the few that differ by name or
    are derived (learning rate, warm-up, DeepSpeed path, vLLM context, the parity knobs, logging)."""
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
        **_same_named(opt),
        **_same_named(hw, _VLLM_FIELDS | {"deepspeed"}),
        **_same_named(g, frozenset({"temperature", "generation_kwargs"})),
        output_dir=str(RunDir(run_dir).checkpoints),
        run_name=str(run_dir),
        seed=cfg.seed,
        learning_rate=opt.lr,
        lr_scheduler_kwargs=scheduler_kwargs,
        warmup_steps=opt.warmup_ratio,  # a float in [0, 1) is a ratio of total steps in transformers 5
        deepspeed=str(deepspeed) if deepspeed else None,
        gradient_checkpointing=model.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if model.gradient_checkpointing else None,
        # sampling temperature, or the log-prob one when they differ (docs/PARITY.md)
        temperature=g.logprob_temperature if g.logprob_temperature is not None else g.temperature,
        generation_kwargs=_generation_kwargs(cfg),
        vllm_importance_sampling_correction=g.importance_sampling_correction,
        use_bias_correction_kl=g.bias_corrected_kl,
        reward_weights=cfg.reward.weights(),
        logging_first_step=True,
        report_to=["tensorboard"],
        disable_tqdm=True,
        ddp_timeout=hw.ddp_timeout_s,
        model_init_kwargs=reference_init_kwargs(cfg),
        **vllm,
    )


def reference_init_kwargs(cfg: RunConfig) -> dict[str, Any] | None:
    """What TRL builds the KL reference model with beyond the policy's name: the policy's pinned hub revision.

    openrs hands TRL a loaded policy; TRL 1.16 then builds the reference model itself from the policy's
    ``_name_or_path`` with ``GRPOConfig.model_init_kwargs`` (its dtype and attention it copies from the policy), so
    without this a pinned ``model.revision`` would train from the pin against a KL anchor on the hub's main branch.
    """
    model = cfg.model
    if cfg.grpo.beta == 0 or model.revision is None or model.tiny is not None or model.warm_start is not None:
        return None
    return {"revision": model.revision}
