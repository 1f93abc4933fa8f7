"""Evaluation results as TensorBoard scalars in a training run's ``tb/``, at each checkpoint's step.

Scalars are ``eval/<benchmark>/pass@1`` (plus ``pass@k`` for k > 1 and ``eval/average/...``). They go to a new
event file in the same directory as the training events, so TensorBoard shows them as part of the same run,
beside ``train/reward``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def eval_scalars(results: Mapping[str, Any]) -> dict[str, float]:
    """Tag -> value for one ``results.json``: every pass@k of each benchmark and of the average."""
    scalars: dict[str, float] = {}
    groups = dict(results["benchmarks"])
    if results.get("average"):
        groups["average"] = results["average"]
    for name, summary in groups.items():
        for key, value in summary.items():
            if key.startswith("pass@"):
                scalars[f"eval/{name}/{key}"] = float(value)
    return scalars


class EvalCurves:
    """Appends evaluation scalars to ``log_dir``; use as a context manager."""

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(log_dir), filename_suffix=".eval")

    def add(self, results: Mapping[str, Any], step: int) -> None:
        for tag, value in eval_scalars(results).items():
            self._writer.add_scalar(tag, value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> EvalCurves:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
