"""Each training GPU's peak memory, estimated by part before anything loads, and what to turn where it cannot fit.

Arithmetic only, written by hand: DeepSpeed's ``estimate_zero2_model_states_mem_needs`` counts the model states (the
parts below agree with it, tests/test_memory_plan.py) and accelerate's ``estimate-memory`` the inference weights, but
neither counts a GRPO rank's reference model, colocated vLLM or activations.

Per training rank, with P parameters and N ranks sharing the ZeRO-2 partitions:
  weights            P x 2 (bf16 under DeepSpeed) or P x 4 (float32 masters under autocast, no DeepSpeed)
  gradients          ZeRO-2: P x 2 / N, this rank's partition (none on the GPU with optimizer offload);
                     no DeepSpeed: as large as the weights
  reduce bucket      ZeRO's gradient reduce bucket: reduce_bucket_size x 2
  fp32 masters       P x 4 / N (DeepSpeed, optimizer on the GPU); no DeepSpeed: the weights are the masters
  AdamW states       P x 8 / N, two fp32 moments (no DeepSpeed: P x 8)
  fp32 gradients     P x 4 / N, the float32 copy the optimizer step reads (DeepSpeed, optimizer on the GPU)
  reference model    P x the weights' bytes, when grpo.beta > 0 and the policy has no LoRA adapter
  colocated vLLM     vllm_gpu_memory_utilization x the GPU's memory (server mode: a GPU of its own)
  activations        with gradient checkpointing, each layer's input (L x B x T x H x 2) plus one layer recomputed
                     in backward with its gradients (B x T x (6H + 4I) x 2 x 2); without it, every layer's
  CUDA context       a fixed 0.6 GB per process (context, cuBLAS workspace, NCCL buffers)
A LoRA run trains an adapter of well under 1% of P: its gradients and optimizer states are left out.
B: per-device micro-batch, T: prompt + completion tokens, H: hidden size, I: MLP width, L: layers. The log-prob
forward does not hold full logits: TRL 1.16 scores through its fused, tiled LM head.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1e9
CUDA_CONTEXT_GB = 0.6
HEADROOM = 0.95  # the share of the GPU a plan may fill: the allocator's fragmentation takes the rest


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs of a causal LM's architecture."""

    params: int
    layers: int
    hidden: int
    intermediate: int


@dataclass(frozen=True)
class Layout:
    """How a run places one training rank's memory (from the hardware preset and its DeepSpeed config)."""

    ranks: int = 1  # training ranks sharing ZeRO partitions
    deepspeed: bool = True  # ZeRO-2 (else plain DDP with float32 weights under bf16 autocast)
    offload_optimizer: bool = False  # ZeRO optimizer offload: masters, AdamW and fp32 gradients in host memory
    reduce_bucket: int = 500_000_000  # elements of ZeRO's gradient reduce bucket
    lora: bool = False  # only a LoRA adapter trains: its gradients and optimizer states are negligible
    reference_model: bool = True  # a KL reference copy of the policy (grpo.beta > 0, no LoRA)
    vllm_share: float = 0.0  # share of this GPU a colocated vLLM takes
    micro_batch: int = 6  # sequences a rank's forward/backward holds
    seq_len: int = 4096  # prompt + completion tokens of each
    gradient_checkpointing: bool = True


@dataclass(frozen=True)
class MemoryPlan:
    """Estimated peak of one training GPU, by part (GB), against the device's memory."""

    parts: dict[str, float]
    device_gb: float
    layout: Layout

    @property
    def total_gb(self) -> float:
        return sum(self.parts.values())

    @property
    def fits(self) -> bool:
        return self.total_gb <= HEADROOM * self.device_gb

    def describe(self) -> str:
        parts = ", ".join(f"{name} {gb:.1f}" for name, gb in self.parts.items() if gb >= 0.05)
        return f"{self.total_gb:.1f} GB of {self.device_gb:g} GB ({parts})"

    def knobs(self) -> list[str]:
        """The settings that would free the most memory, largest first."""
        p, lay = self.parts, self.layout
        options: list[tuple[float, str]] = []
        optimizer = p["fp32 masters"] + p["AdamW states"] + p["fp32 gradients"]
        if lay.deepspeed and optimizer:
            options.append((optimizer, "hardware.deepspeed=deepspeed/zero2_offload.json (optimizer in host memory)"))
        if p["colocated vLLM"]:
            options.append((p["colocated vLLM"], "a lower hardware.vllm_gpu_memory_utilization"))
        if p["activations"]:
            options.append(
                (
                    p["activations"],
                    "a smaller hardware.per_device_train_batch_size with more gradient_accumulation_steps",
                )
            )
        if p["reference model"]:
            options.append((p["reference model"], "grpo.beta=0 (no KL reference model)"))
        return [text for _, text in sorted(options, key=lambda o: -o[0])]


def activations_gb(shape: ModelShape, lay: Layout) -> float:
    """Activation memory of one micro-batch's forward and backward (see the module docstring)."""
    tokens = lay.micro_batch * lay.seq_len
    one_layer = tokens * (6 * shape.hidden + 4 * shape.intermediate) * 2 * 2
    if lay.gradient_checkpointing:
        return (shape.layers * tokens * shape.hidden * 2 + one_layer) / GB
    return shape.layers * one_layer / GB


def plan_memory(shape: ModelShape, device_gb: float, lay: Layout, weight_bytes: int = 2) -> MemoryPlan:
    """The estimate above for one training rank of ``lay`` on a GPU of ``device_gb``."""
    p, n = shape.params, lay.ranks
    if lay.lora:
        bucket = gradients = masters = adam = fp32_grads = 0.0
    elif lay.deepspeed:
        on_gpu = 0.0 if lay.offload_optimizer else 1.0
        bucket = min(lay.reduce_bucket, p) * 2
        gradients = on_gpu * p * 2 / n
        masters, adam, fp32_grads = on_gpu * p * 4 / n, on_gpu * p * 8 / n, on_gpu * p * 4 / n
    else:  # DDP: float32 weights are the masters; the gradients and AdamW's moments match them in full
        bucket, gradients, masters, adam, fp32_grads = 0.0, p * weight_bytes, 0.0, p * 8, 0.0
    parts = {
        "weights": p * weight_bytes / GB,
        "gradients": gradients / GB,
        "reduce bucket": bucket / GB,
        "fp32 masters": masters / GB,
        "AdamW states": adam / GB,
        "fp32 gradients": fp32_grads / GB,
        "reference model": p * weight_bytes / GB if lay.reference_model else 0.0,
        "colocated vLLM": lay.vllm_share * device_gb,
        "activations": activations_gb(shape, lay),
        "CUDA context": CUDA_CONTEXT_GB,
    }
    return MemoryPlan(parts, device_gb, lay)
