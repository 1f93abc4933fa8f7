"""What the GPU check runs and on what: its config from the presets, the installed backends, the machine's facts.

The run is composed from Hydra overrides exactly as ``python -m openrs.train experiment=gpu_check`` would compose
it; the only additions are the ones that follow from what is installed (no vLLM: transformers generation; no
DeepSpeed: no ZeRO). The target of the projection is composed the same way, from ``experiment=rs3``.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from openrs.config import RunConfig, compose, to_run_config
from openrs.config.memory import MemoryPlan, ModelShape
from openrs.gpu_check.projection import ModelCost, StepShape
from openrs.runtime.memory_check import query_nvidia_smi

CHECK_EXPERIMENT = "experiment=gpu_check"
ON_GPU_ADAMW = "deepspeed/zero2.json"  # ZeRO-2, fp32 masters and AdamW on the GPU
OFFLOAD_ADAMW = "deepspeed/zero2_offload.json"  # ZeRO-2, fp32 masters and AdamW in host memory (CPU Adam)
TARGET_EXPERIMENT = "experiment=rs3"
VERSIONED = (
    "torch",
    "transformers",
    "trl",
    "vllm",
    "deepspeed",
    "flash-attn",
    "accelerate",
    "datasets",
    "peft",
)


def version(dist: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Backends:
    vllm: str | None
    deepspeed: str | None
    flash_attn: str | None

    @classmethod
    def installed(cls) -> Backends:
        return cls(version("vllm"), version("deepspeed"), version("flash-attn") or version("flash_attn"))


def check_overrides(extra: list[str], backends: Backends, layout: list[str] | None = None) -> list[str]:
    """The check's Hydra overrides: the preset, what the installed backends allow, the layout chosen for the GPU
    (choose_layout), then the user's own, which win."""
    out = [CHECK_EXPERIMENT]
    if not backends.vllm:
        out.append("hardware.use_vllm=false")
    if not backends.deepspeed:
        out.append("hardware.deepspeed=null")
    return out + list(layout or []) + list(extra)


@dataclass(frozen=True)
class LayoutChoice:
    """Where the check keeps the optimizer on a GPU of this size, and why."""

    overrides: list[str]  # the choice, as overrides placed before the user's own
    memory: MemoryPlan  # the plan of the run as finally composed
    reason: str


def choose_layout(extra: list[str], backends: Backends, device_gb: float, shape: ModelShape) -> LayoutChoice:
    """AdamW on the GPU (ZeRO-2) where its plan fits, else optimizer offload (ZeRO-2, AdamW in host memory).

    The user's own overrides still win (and the plan is of what they compose to); without DeepSpeed there is no choice.
    """
    from openrs.runtime.memory_check import run_memory_plan

    def plan_with(layout: list[str]) -> tuple[RunConfig, MemoryPlan]:
        cfg = compose_run(check_overrides(extra, backends, layout))
        return cfg, run_memory_plan(cfg, device_gb, shape)

    if not backends.deepspeed:
        _, memory = plan_with([])
        return LayoutChoice([], memory, "no DeepSpeed installed: plain DDP, float32 weights and AdamW on the GPU")
    on_gpu_choice = [f"hardware.deepspeed={ON_GPU_ADAMW}"]
    cfg, memory = plan_with(on_gpu_choice)
    if memory.fits and cfg.hardware.deepspeed == ON_GPU_ADAMW:
        return LayoutChoice(
            on_gpu_choice, memory, f"AdamW on the GPU: its {memory.total_gb:.1f} GB fit in {device_gb:g} GB"
        )
    why = f"with AdamW on the GPU a rank would need {memory.total_gb:.1f} GB of {device_gb:g}"
    offload_choice = [f"hardware.deepspeed={OFFLOAD_ADAMW}"]
    cfg, memory = plan_with(offload_choice)
    if cfg.hardware.deepspeed != OFFLOAD_ADAMW:
        return LayoutChoice(offload_choice, memory, f"hardware.deepspeed={cfg.hardware.deepspeed}, as given")
    return LayoutChoice(offload_choice, memory, f"optimizer offload (AdamW in host memory): {why}")


def compose_run(overrides: list[str]) -> RunConfig:
    return to_run_config(compose(overrides))


def rounds_per_step(cfg: RunConfig) -> int:
    """Generation rounds per optimizer step: gradient accumulation steps over ``steps_per_generation``."""
    accumulation = cfg.hardware.gradient_accumulation_steps
    per_generation = cfg.grpo.steps_per_generation or accumulation
    return max(1, accumulation // per_generation)


def completions_per_round(cfg: RunConfig) -> int:
    """Completions one generation round samples over all ranks (TRL's generation batch)."""
    hw = cfg.hardware
    per_generation = cfg.grpo.steps_per_generation or hw.gradient_accumulation_steps
    return hw.per_device_train_batch_size * hw.num_processes * per_generation


def completions_per_step(cfg: RunConfig) -> int:
    return rounds_per_step(cfg) * completions_per_round(cfg)


def shape_of(
    cfg: RunConfig,
    prompt_tokens: float,
    decode_steps: float | None = None,
    completion_tokens: float | None = None,
) -> StepShape:
    """A run's step shape; completions run to ``max_len`` unless measured lengths are given."""
    max_len = cfg.grpo.max_completion_length
    return StepShape(
        rounds=rounds_per_step(cfg),
        completions_per_round=completions_per_round(cfg),
        decode_steps=decode_steps if decode_steps is not None else max_len,
        completion_tokens=completion_tokens if completion_tokens is not None else max_len,
        prompt_tokens=prompt_tokens,
        training_ranks=cfg.hardware.num_processes,
    )


def describe(cfg: RunConfig, backends: Backends) -> dict[str, str]:
    """What the run does, in words, for the report."""
    from openrs.models import attn_implementation

    hw, g = cfg.hardware, cfg.grpo
    if hw.use_vllm:
        generation = f"vLLM {backends.vllm}, {getattr(hw.vllm_mode, 'value', hw.vllm_mode)} mode"
    else:
        generation = "transformers generate()" + ("" if backends.vllm else " (vLLM is not installed)")
    deepspeed = (
        f"DeepSpeed {backends.deepspeed}, {hw.deepspeed}"
        if hw.deepspeed
        else ("none" + ("" if backends.deepspeed else " (DeepSpeed is not installed)"))
    )
    return {
        "generation": generation,
        "deepspeed": deepspeed,
        "attention": str(attn_implementation(cfg.model.attn_implementation)),
        "precision": f"{getattr(cfg.model.dtype, 'value', cfg.model.dtype)} weights, bf16={hw.bf16}",
        "gradient checkpointing": str(cfg.model.gradient_checkpointing),
        "steps": str(g.max_steps),
        "batch": (
            f"{completions_per_step(cfg)} completions a step ({g.num_generations} per prompt), "
            f"{hw.per_device_train_batch_size} a micro-step x {hw.gradient_accumulation_steps} micro-steps "
            f"x {hw.num_processes} rank(s), {rounds_per_step(cfg)} generation round(s) a step"
        ),
        "completion budget": f"{g.max_completion_length} tokens",
        "loss": f"{getattr(g.loss_type, 'value', g.loss_type)}, beta {g.beta}, lr {cfg.optimizer.lr}",
    }


def environment() -> dict[str, Any]:
    """Devices, driver, CUDA and package versions; devices come from nvidia-smi, so no CUDA context is made here."""
    import torch

    devices = []
    driver = None
    for line in query_nvidia_smi("name,memory.total,driver_version").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            devices.append({"name": parts[0], "memory_mib": int(parts[1]) if parts[1].isdigit() else None})
            driver = parts[2]
    return {
        "devices": devices,
        "driver": driver,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: version(name) for name in VERSIONED},
        "command": " ".join([Path(sys.executable).name, "-m", "openrs.gpu_check", *sys.argv[1:]]),
    }


def prompt_tokens(cfg: RunConfig, tokenizer: Any, rows: int = 64) -> float:
    """Mean prompt length in tokens over the first rows of the run's data, rendered with the chat template."""
    from openrs import data

    ds = data.load_problems(cfg.dataset)
    ds = ds.select(range(min(rows, len(ds))))
    lengths = []
    for prompt in ds["prompt"]:
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        lengths.append(len(ids))
    return sum(lengths) / len(lengths)


def model_cost(model: Any) -> tuple[int, ModelCost]:
    """Parameter count and decode cost of a Qwen2 model (real or on the meta device)."""
    c = model.config
    params = sum(p.numel() for p in model.parameters())
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return params, ModelCost.qwen2(params, c.num_hidden_layers, c.num_key_value_heads, head_dim)


def qwen2_params(hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int, vocab: int, tied: bool) -> int:
    """Parameters of a Qwen2 causal LM, counted by hand: the check that the built model has the intended shape."""
    head_dim = hidden // heads
    attention = hidden * hidden + hidden + 2 * (hidden * kv_heads * head_dim + kv_heads * head_dim) + hidden * hidden
    mlp = 3 * hidden * intermediate
    layer = attention + mlp + 2 * hidden  # two RMSNorm weights
    return vocab * hidden * (1 if tied else 2) + layers * layer + hidden  # + the final norm
