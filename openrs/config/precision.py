"""Which dtype the policy trains in, and where its fp32 master weights live.

bf16 weights stepped by a plain optimizer lose almost every update at GRPO's learning rates: an AdamW step of
~1e-6 is far below bf16's resolution (8 bits of mantissa, ~4e-3 relative), so it rounds away. A bf16 run
therefore needs fp32 master weights somewhere:

- with DeepSpeed (ZeRO-2, the seed's setup): the model loads in bf16 and DeepSpeed's optimizer keeps fp32
  master copies (on the GPU, or in host memory with optimizer offload);
- without DeepSpeed: the model loads in float32 and trains under bf16 autocast (TrainingArguments ``bf16``);
  the fp32 weights are the masters.

A bf16/fp16 model without mixed precision (``hardware.bf16=false``) would train half-precision weights with no
master copy at all; that is refused with the two ways out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from openrs.config.base import value_of
from openrs.errors import UsageError


@dataclass(frozen=True)
class PrecisionPlan:
    """What a run's precision settings amount to (recorded in provenance.json)."""

    weights_dtype: str  # dtype the policy is loaded in
    compute: str  # how forward/backward run: "bf16 weights", "bf16 autocast" or the weights' dtype
    master_weights: str  # where the copy that the optimizer steps lives

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def precision_plan(
    model_dtype: Any, bf16: bool, deepspeed: str | None, offload_optimizer: bool = False
) -> PrecisionPlan:
    """The plan for a model dtype (``model.dtype``), mixed precision (``hardware.bf16``) and DeepSpeed config."""
    dtype = str(value_of(model_dtype))
    if bf16 and deepspeed:  # DeepSpeed's bf16 mode casts the module to bf16 anyway: load it so
        where = "host memory (ZeRO optimizer offload)" if offload_optimizer else "the GPU (ZeRO)"
        return PrecisionPlan("bfloat16", "bf16 weights", f"float32 in the DeepSpeed optimizer, in {where}")
    if bf16:
        return PrecisionPlan("float32", "bf16 autocast", "the float32 model weights")
    if dtype in ("bfloat16", "float16"):
        raise UsageError(
            f"model.dtype={dtype} with hardware.bf16=false trains {dtype} weights with no float32 master copy, so "
            "updates below its resolution round away: set hardware.bf16=true (mixed precision) or model.dtype=float32"
        )
    return PrecisionPlan(dtype, dtype, f"the {dtype} model weights")
