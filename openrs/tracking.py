"""What a run leaves in its directory besides checkpoints: provenance, a metrics log, a summary.

TensorBoard events come from transformers' own TensorBoardCallback (pointed at ``<run dir>/tb``);
this module adds what no library writes for us.
"""

from __future__ import annotations

import math
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from openrs import figures, jsonl
from openrs.atomic import write_json_atomic
from openrs.run_dir import RunDir

TRACKED_PACKAGES = [
    "openrs", "torch", "transformers", "trl", "accelerate", "datasets", "peft", "hydra-core", "omegaconf",
    "math-verify", "tensorboard", "submitit", "hydra-submitit-launcher", "vllm", "deepspeed", "liger-kernel",
]  # fmt: skip


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(repo_dir: Path) -> dict[str, Any]:
    """Commit and dirtiness of the source tree, or nulls outside a git checkout."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(repo_dir), *args], capture_output=True, text=True, timeout=10, check=True
            )
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def hardware_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {"cpu_count": os.cpu_count(), "platform": platform.platform()}
    try:
        import torch

        facts["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            facts["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    return facts


def write_provenance(run_dir: Path, hardware: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record versions, commit, command line, host and hardware in ``provenance.json``."""
    repo_dir = Path(__file__).resolve().parent.parent
    record = {
        "created": datetime.now(timezone.utc).isoformat(),
        "command": list(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "git": git_state(repo_dir),
        "hardware_preset": hardware,
        "hardware": hardware_facts(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        **(extra or {}),
    }
    write_json_atomic(RunDir(run_dir).provenance, record)
    return record


class MetricsFileCallback(TrainerCallback):
    """Append every logged metrics dict, with its step, to ``metrics.jsonl`` (main process only)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 - transformers hook
        if not state.is_world_process_zero or not logs:
            return
        jsonl.append(self.path, {"step": state.global_step, **{k: _finite(v) for k, v in logs.items()}})


class ProgressLogCallback(TrainerCallback):
    """One line per log step on the console: step, total reward, each term, completion length."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 - transformers hook
        if not state.is_world_process_zero or not logs or "reward" not in logs:
            return
        terms = " ".join(
            f"{k.split('/')[1]}={v:.3f}"
            for k, v in logs.items()
            if k.startswith("rewards/") and k.endswith("/mean")
        )
        length = logs.get("completions/mean_length", float("nan"))
        print(
            f"step {state.global_step}/{state.max_steps}  reward={logs['reward']:.3f}  {terms}  len={length:.1f}",
            flush=True,
        )


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


def summarize(log_history: list[dict[str, Any]], window: int = 10) -> dict[str, Any]:
    """Final and best figures of a run from the trainer's log history."""
    steps = [r for r in log_history if "reward" in r]
    summary: dict[str, Any] = {"logged_steps": len(steps)}
    if steps:
        last = steps[-1]
        summary["final"] = {k: v for k, v in last.items() if isinstance(v, (int, float))}
        rewards = [r["reward"] for r in steps]
        summary["best_reward"] = max(rewards)
        summary["best_reward_step"] = steps[rewards.index(max(rewards))].get("step")
        head, tail = rewards[:window], rewards[-window:]
        summary[f"reward_first_{len(head)}_mean"] = sum(head) / len(head)
        summary[f"reward_last_{len(tail)}_mean"] = sum(tail) / len(tail)
    for rec in log_history:
        if "train_runtime" in rec:
            summary["train_runtime_s"] = rec["train_runtime"]
    # The row `python -m openrs.compare` prints for this run, computed the same way.
    summary["figures"] = figures.headline(figures.series_from_log_history(log_history), window)
    return summary
