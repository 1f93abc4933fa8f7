"""Each training GPU's peak memory, estimated by part before anything loads (issue 23: work in progress).

Arithmetic only, from the model's parameter count and the run's layout; written by hand because neither DeepSpeed's
``estimate_zero2_model_states_mem_needs`` (model states only) nor accelerate's ``estimate-memory`` (inference
weights) counts a GRPO rank's reference model, colocated vLLM and log-prob logits.

Per training rank, in bytes, with P parameters and N ranks under ZeRO-2:
  weights     P x 2 (bf16) or P x 4 (float32)
  gradients   P x 2 (bf16; ZeRO-2 reduces them into partitions, but the backward fills full-size buckets)
  masters     P x 4 / N    fp32 copies of the weights   (host memory with optimizer offload)
  optimizer   P x 8 / N    AdamW's two fp32 moments     (host memory with optimizer offload)
  step copy   P x 4 / N    the fp32 gradient partition the optimizer step reads (host memory with offload)
  reference   P x 2        the KL reference model, when grpo.beta > 0 and no LoRA
  vLLM        utilization x device memory, when vLLM is colocated (server mode: its own GPU)
  logits      micro-batch x tokens x vocab x 4: the fp32 logits of one log-prob forward
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1e9


@dataclass(frozen=True)
class MemoryPlan:
    """Estimated peak of one training GPU, by part (GB), against the device's memory."""

    parts: dict[str, float]
    device_gb: float

    @property
    def total_gb(self) -> float:
        return sum(self.parts.values())

    def fits(self, headroom: float = 0.95) -> bool:
        """Whether the estimate stays under ``headroom`` of the device (the CUDA context and fragmentation)."""
        return self.total_gb <= headroom * self.device_gb

    def describe(self) -> str:
        parts = ", ".join(f"{name} {gb:.2f}" for name, gb in self.parts.items() if gb)
        return f"{self.total_gb:.1f} GB of {self.device_gb:.0f} GB ({parts})"


def plan_memory(
    params: int,
    device_gb: float,
    ranks: int = 1,
    weight_bytes: int = 2,
    offload_optimizer: bool = False,
    reference_model: bool = True,
    vllm_colocate_share: float = 0.0,
    logits_elements: int = 0,
) -> MemoryPlan:
    """The estimate above for one training rank (``logits_elements``: micro-batch x tokens x vocab)."""
    on_gpu = 0.0 if offload_optimizer else 1.0
    parts = {
        "weights": params * weight_bytes / GB,
        "gradients": params * 2 / GB,
        "fp32 masters": on_gpu * params * 4 / ranks / GB,
        "AdamW states": on_gpu * params * 8 / ranks / GB,
        "fp32 step gradients": on_gpu * params * 4 / ranks / GB,
        "reference model": (params * 2 / GB) if reference_model else 0.0,
        "colocated vLLM": vllm_colocate_share * device_gb,
        "log-prob logits": logits_elements * 4 / GB,
    }
    return MemoryPlan(parts, device_gb)
