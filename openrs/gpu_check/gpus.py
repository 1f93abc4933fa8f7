"""What each GPU model can do, from its datasheet: dense bf16 TFLOPS and memory bandwidth, matched by device name."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuSpec:
    """Published peak figures of one GPU model."""

    name: str
    bf16_tflops: float  # dense bf16 tensor-core peak (without structured sparsity)
    bandwidth_gbs: float  # memory bandwidth, GB/s
    source: str


A40 = GpuSpec(
    "NVIDIA A40", 149.7, 696.0, "NVIDIA A40 datasheet: BF16 149.7 TFLOPS dense (299.4 sparse), 696 GB/s GDDR6"
)

# Matched against torch.cuda.get_device_name(), first match wins (the more specific names come first).
SPECS: tuple[tuple[str, GpuSpec], ...] = (
    (r"A40\b", A40),
    (
        r"H200.*NVL",
        GpuSpec("NVIDIA H200 NVL", 835.5, 4800.0, "NVIDIA H200 datasheet: NVL BF16 1,671 TFLOPS sparse, 4.8 TB/s"),
    ),
    (
        r"H200",
        GpuSpec(
            "NVIDIA H200 SXM",
            989.5,
            4800.0,
            "NVIDIA H200 datasheet: SXM BF16 1,979 TFLOPS sparse, 4.8 TB/s HBM3e",
        ),
    ),
    (
        r"H100.*NVL",
        GpuSpec("NVIDIA H100 NVL", 835.5, 3900.0, "NVIDIA H100 datasheet: NVL BF16 1,671 TFLOPS sparse, 3.9 TB/s"),
    ),
    (
        r"H100.*PCIe",
        GpuSpec(
            "NVIDIA H100 PCIe",
            756.5,
            2000.0,
            "NVIDIA H100 datasheet: PCIe BF16 1,513 TFLOPS sparse, 2.0 TB/s",
        ),
    ),
    (
        r"H100",
        GpuSpec("NVIDIA H100 SXM", 989.5, 3350.0, "NVIDIA H100 datasheet: SXM BF16 1,979 TFLOPS sparse, 3.35 TB/s"),
    ),
    (
        r"A100.*80GB.*PCIe|A100.*PCIe.*80GB",
        GpuSpec("NVIDIA A100 80GB PCIe", 312.0, 1935.0, "NVIDIA A100 datasheet: BF16 312 TFLOPS, 1,935 GB/s"),
    ),
    (
        r"A100.*80GB",
        GpuSpec("NVIDIA A100 80GB SXM", 312.0, 2039.0, "NVIDIA A100 datasheet: BF16 312 TFLOPS, 2,039 GB/s"),
    ),
    (
        r"A100",
        GpuSpec("NVIDIA A100 40GB", 312.0, 1555.0, "NVIDIA A100 datasheet: BF16 312 TFLOPS, 1,555 GB/s"),
    ),
    (
        r"L40S",
        GpuSpec("NVIDIA L40S", 362.0, 864.0, "NVIDIA L40S datasheet: BF16 362 TFLOPS dense (733 sparse), 864 GB/s"),
    ),
    (r"\bL4\b", GpuSpec("NVIDIA L4", 121.0, 300.0, "NVIDIA L4 datasheet: BF16 242 TFLOPS sparse, 300 GB/s")),
)


def lookup(device_name: str) -> GpuSpec | None:
    """The published figures for a CUDA device name, or None for a GPU not in :data:`SPECS`."""
    for pattern, spec in SPECS:
        if re.search(pattern, device_name, re.IGNORECASE):
            return spec
    return None
