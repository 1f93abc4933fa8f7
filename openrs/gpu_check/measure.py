"""What a finished check run measured: per-step seconds and tokens, peak memory, and how the weights moved.

Everything is read back from what the run left (``metrics.jsonl``, ``.launch/rank-<r>.json``, the model files
before and after), so the figures are the ones any run of the same presets records; the one live measurement is
:class:`DeviceMemorySampler`, which polls ``nvidia-smi`` from outside the ranks.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openrs.records.observe import phase_seconds
from openrs.records.run_dir import RunDir
from openrs.runtime.memory_check import query_nvidia_smi


@dataclass(frozen=True)
class StepFigures:
    """One optimizer step of the check run (seconds are per step)."""

    step: int
    wall: float | None  # per-step wall time: not logged by TRL (see steady_state)
    step_time: float | None  # TRL's step_time: inside training_step
    generation: float | None
    reward: float | None
    loss: float | None  # step_time - generation - reward: the loss forward/backward
    other: float | None  # wall - step_time: optimizer step, clipping, callbacks (see steady_state)
    mean_length: float | None  # completion tokens, mean over the step's completions
    max_length: float | None
    clipped_ratio: float | None  # share of completions that hit max_len
    completion_tokens: float | None  # over all the step's completions
    finite: bool  # loss, grad_norm and KL of the step are finite numbers

    @property
    def generation_tokens_per_s(self) -> float | None:
        """Completion tokens per second of the generation phase."""
        if self.completion_tokens is None or not self.generation:
            return None
        return self.completion_tokens / self.generation


def _number(record: dict[str, Any], key: str) -> float | None:
    value = record.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def step_figures(records: list[dict[str, Any]], completions_per_step: int, rounds_per_step: float) -> list[StepFigures]:
    """The per-step figures of ``metrics.jsonl`` records (the training-summary record is skipped)."""
    out = []
    for rec in records:
        if "train_runtime" in rec or "step_time" not in rec:
            continue
        phases = phase_seconds(rec, rounds_per_step)
        mean_length = _number(rec, "completions/mean_length")
        # metrics.jsonl writes non-finite floats as null (openrs.records.metrics_log), so a null here is a NaN or inf.
        finite = all(k not in rec or _number(rec, k) is not None for k in ("loss", "grad_norm", "kl"))
        out.append(
            StepFigures(
                step=int(rec["step"]),
                wall=None,  # TRL logs no per-step wall time; the mean comes from train_runtime (steady_state)
                step_time=phases["step_time"],
                generation=phases["generation"],
                reward=phases["reward"],
                loss=phases["loss"],
                other=None,
                mean_length=mean_length,
                max_length=_number(rec, "completions/max_length"),
                clipped_ratio=_number(rec, "completions/clipped_ratio"),
                completion_tokens=mean_length * completions_per_step if mean_length is not None else None,
                finite=finite,
            )
        )
    return out


def steady_state(steps: list[StepFigures], wall_per_step: float | None = None) -> dict[str, float | None]:
    """Means over the steps after the first (it pays for CUDA kernels, allocator growth and caches), or the one step.

    ``wall_per_step`` (the Trainer's ``train_runtime`` over the steps) gives the wall time and, beside TRL's
    ``step_time``, the rest of a step ("other": optimizer step, clipping, callbacks), as a mean over every step.
    """
    timed = steps[1:] or steps
    keys = (
        "wall",
        "step_time",
        "generation",
        "reward",
        "loss",
        "other",
        "mean_length",
        "max_length",
        "completion_tokens",
    )

    def mean(key: str) -> float | None:
        values = [getattr(s, key) for s in timed]
        return statistics.fmean(values) if values and None not in values else None

    out = {k: mean(k) for k in keys}
    if wall_per_step is not None:
        out["wall"] = wall_per_step
        out["other"] = max(0.0, wall_per_step - out["step_time"]) if out["step_time"] is not None else None
    gen, tokens = out["generation"], out["completion_tokens"]
    out["generation_tokens_per_s"] = tokens / gen if gen and tokens is not None else None
    out["timed_steps"] = float(len(timed))
    return out


def rank_memory(run_dir: Path) -> list[dict[str, Any]]:
    """Peak CUDA memory of each spawned rank (``.launch/rank-<r>.json``); [] when the run trained in process."""
    reports = sorted(RunDir(run_dir).launch.glob("rank-*.json"))
    out = []
    for path in reports:
        rec = json.loads(path.read_text())
        if "cuda_max_memory_allocated" in rec:
            out.append({k: rec[k] for k in ("rank", "cuda_max_memory_allocated", "cuda_max_memory_reserved")})
    return out


def this_process_memory() -> list[dict[str, Any]]:
    """Peak CUDA memory of this process, as a one-rank list (the run trained in process)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [
        {
            "rank": 0,
            "cuda_max_memory_allocated": torch.cuda.max_memory_allocated(),
            "cuda_max_memory_reserved": torch.cuda.max_memory_reserved(),
        }
    ]


class DeviceMemorySampler:
    """Peak memory in use on each GPU, all processes together (vLLM's pool included), polled with nvidia-smi."""

    def __init__(self, interval_s: float = 2.0) -> None:
        self.interval_s = interval_s
        self.peak_mib: dict[str, int] = {}
        self.total_mib: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        out = query_nvidia_smi("index,memory.used,memory.total")
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 3 and all(p.isdigit() for p in parts):
                index, used, total = parts[0], int(parts[1]), int(parts[2])
                self.peak_mib[index] = max(used, self.peak_mib.get(index, 0))
                self.total_mib[index] = total

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> DeviceMemorySampler:
        if shutil.which("nvidia-smi"):
            self.sample()
            self._thread = threading.Thread(target=self._loop, name="gpu-memory-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


@dataclass
class WeightsDiff:
    """How the weights on disk after training differ from the ones before."""

    tensors: int = 0
    changed_tensors: int = 0
    elements: int = 0
    changed_elements: int = 0
    max_abs_change: float = 0.0
    nonfinite: list[str] = field(default_factory=list)  # tensors holding a NaN or inf after training
    missing: list[str] = field(default_factory=list)  # before, but not after
    unexpected: list[str] = field(default_factory=list)  # after, but not before

    @property
    def moved(self) -> bool:
        return self.changed_elements > 0

    @property
    def finite(self) -> bool:
        return not self.nonfinite


def _safetensors_index(model_dir: Path) -> dict[str, Path]:
    """Tensor name -> the .safetensors file of ``model_dir`` that holds it (sharded or not)."""
    from safetensors import safe_open

    index: dict[str, Path] = {}
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as fh:
            for name in fh.keys():
                index[name] = path
    if not index:
        raise FileNotFoundError(f"no .safetensors weights in {model_dir}")
    return index


def compare_weights(before_dir: Path, after_dir: Path, device: str | None = None) -> WeightsDiff:
    """Compare every tensor of two saved models: which moved, by how much, and whether all stayed finite.

    Both are compared in the dtype they were saved in after training (the model trained in bf16 is saved so), on
    ``device`` (default: the GPU where there is one, where 1.8B elements take a second rather than a minute).
    """
    import torch
    from safetensors import safe_open

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    before, after = _safetensors_index(before_dir), _safetensors_index(after_dir)
    diff = WeightsDiff(missing=sorted(set(before) - set(after)), unexpected=sorted(set(after) - set(before)))
    for name in sorted(after):
        with safe_open(str(after[name]), framework="pt") as fh:
            new = fh.get_tensor(name).to(device)
        diff.tensors += 1
        diff.elements += new.numel()
        if not torch.isfinite(new).all():
            diff.nonfinite.append(name)
        if name not in before:
            continue
        with safe_open(str(before[name]), framework="pt") as fh:
            old = fh.get_tensor(name).to(device=device, dtype=new.dtype)
        if old.shape != new.shape:
            diff.unexpected.append(f"{name} (shape {tuple(old.shape)} -> {tuple(new.shape)})")
            continue
        changed = int((old != new).sum())
        if changed:
            diff.changed_tensors += 1
            diff.changed_elements += changed
            delta = (new.float() - old.float()).abs().max().item()
            diff.max_abs_change = max(diff.max_abs_change, delta if math.isfinite(delta) else math.inf)
    return diff
