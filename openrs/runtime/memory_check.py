"""Before anything loads: will a run's training rank fit in its GPU? (openrs.config.memory has the arithmetic.)

The GPU's memory comes from ``nvidia-smi``, so this process never opens a CUDA context (it would hold ~0.5 GB of
the first GPU for the whole run); the model's shape from its config.json (openrs.models.shape).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from typing import TYPE_CHECKING

from openrs.config import RunConfig, VllmMode
from openrs.config.memory import HEADROOM, Layout, MemoryPlan, ModelShape, plan_memory
from openrs.errors import UsageError

if TYPE_CHECKING:
    from openrs.runtime.placement import LaunchPlan

log = logging.getLogger(__name__)


def query_nvidia_smi(fields: str) -> str:
    """``nvidia-smi --query-gpu=<fields>`` as CSV without header or units; "" where it is missing or fails."""
    if not shutil.which("nvidia-smi"):
        return ""
    try:
        cmd = ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def gpu_memory_gb(devices: tuple[str, ...]) -> float | None:
    """The smallest total memory (GB) among ``devices`` (indices or UUIDs, as CUDA_VISIBLE_DEVICES names them);
    None where nvidia-smi does not say."""
    sizes = {}
    for line in query_nvidia_smi("index,uuid,memory.total").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[2].isdigit():
            sizes[parts[0]] = sizes[parts[1]] = int(parts[2]) * 2**20 / 1e9  # MiB
    chosen = [sizes[d] for d in devices if d in sizes] or list(sizes.values())
    return min(chosen) if chosen else None


def layout_of(cfg: RunConfig) -> Layout:
    """How ``cfg`` places a training rank's memory: its hardware preset, DeepSpeed config, loss and batch."""
    from openrs.training.grpo_config import offloads_optimizer, read_deepspeed_config

    hw = cfg.hardware
    ds = read_deepspeed_config(cfg) or {}
    default_bucket = Layout.reduce_bucket  # DeepSpeed's own default, written once in openrs.config.memory
    bucket = ds.get("zero_optimization", {}).get("reduce_bucket_size", default_bucket)
    return Layout(
        ranks=hw.world_size,  # ZeRO partitions over every node's ranks
        deepspeed=bool(hw.deepspeed),
        offload_optimizer=offloads_optimizer(cfg),
        reduce_bucket=int(bucket) if isinstance(bucket, (int, float)) else default_bucket,  # "auto": the default
        lora=cfg.peft.enabled,
        reference_model=cfg.grpo.beta > 0 and not cfg.peft.enabled,
        vllm_share=hw.vllm_gpu_memory_utilization
        if hw.use_vllm and VllmMode(hw.vllm_mode) is VllmMode.colocate
        else 0.0,
        micro_batch=hw.per_device_train_batch_size,
        seq_len=cfg.dataset.max_prompt_length + cfg.grpo.max_completion_length,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
    )


def run_memory_plan(cfg: RunConfig, device_gb: float, shape: ModelShape | None = None) -> MemoryPlan:
    """The memory plan of ``cfg`` on a GPU of ``device_gb`` (the model's shape is read when not given)."""
    from openrs.models.shape import model_shape
    from openrs.training.grpo_config import run_precision

    weight_bytes = 4 if run_precision(cfg).weights_dtype == "float32" else 2
    return plan_memory(shape or model_shape(cfg.model), device_gb, layout_of(cfg), weight_bytes)


def require_memory_fits(cfg: RunConfig, plan: LaunchPlan) -> MemoryPlan | None:
    """Refuse, before the model loads, a GPU run whose estimated peak exceeds its GPUs' memory.

    Returns the plan (None on CPU, with ``hardware.check_memory=false``, or where nvidia-smi cannot tell).
    """
    if not plan.train_devices or not cfg.hardware.check_memory:
        return None
    device_gb = gpu_memory_gb(plan.train_devices)
    if device_gb is None:
        log.warning("memory plan skipped: nvidia-smi did not report the GPUs' memory")
        return None
    memory = run_memory_plan(cfg, device_gb)
    if not memory.fits:
        turn = "; or ".join(memory.knobs())
        raise UsageError(
            f"hardware={cfg.hardware.name}: a training rank needs an estimated {memory.describe()}, over the "
            f"{100 * HEADROOM:.0f}% a plan may fill; to fit, set {turn} (or hardware.check_memory=false to "
            "try anyway)"
        )
    log.info("memory plan: %s per training GPU", memory.describe())
    return memory
