"""The run's metrics log: every logged record appended to ``metrics.jsonl``, and read back.

transformers' TensorBoardCallback writes the events; this file is the plain-text copy that compare, resume and
the tests read without TensorBoard (one JSON line per log call, torn last lines skipped: openrs.records.jsonl).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from openrs.records import jsonl
from openrs.records.run_dir import RunDir


class MetricsFileCallback(TrainerCallback):
    """Append every logged metrics dict, with its step, to ``metrics.jsonl`` (main process only)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 - transformers hook
        if not state.is_world_process_zero or not logs:
            return
        jsonl.append(self.path, {"step": state.global_step, **{k: _finite(v) for k, v in logs.items()}})


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl``; the last record per step wins after a resume."""
    by_step: dict[tuple[int, bool], dict[str, Any]] = {}
    for rec in jsonl.read(RunDir(run_dir).metrics):  # a line a kill cut short is skipped
        if "step" in rec:
            by_step[(rec["step"], "train_runtime" in rec)] = rec
    return [by_step[k] for k in sorted(by_step)]
