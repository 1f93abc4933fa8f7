"""What a rerun needs to be comparable: the machine and software an evaluation ran on (``results.json``).

Re-evaluations of the same checkpoint have differed by many points between GPU types and library versions
(one RS3 checkpoint: 46.7 on one GPU, 23.3 on another), so every result records them beside its settings.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from typing import Any

PACKAGES = ("openrs", "torch", "transformers", "trl", "vllm", "math-verify", "flash-attn")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _driver() -> str | None:
    """The NVIDIA driver version (nvidia-smi), or None where there is none."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def environment(
    backend: str, dtype: str, tensor_parallel_size: int, seed: int, n_samples: dict[str, int]
) -> dict[str, Any]:
    """GPU model, driver/CUDA, package versions, and the settings that change the numbers."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "driver": _driver() if cuda else None,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "backend": backend,
        "dtype": dtype,
        "tensor_parallel_size": tensor_parallel_size if backend == "vllm" else None,
        "seed": seed,
        "n_samples": n_samples,
    }
