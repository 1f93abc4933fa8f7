"""What a run records about where it came from: versions, commit, command line, host and hardware.

Written once per start into ``provenance.json`` (atomically), with what the trainer was really built with
(the full GRPOConfig, attention, precision, DeepSpeed config) passed in as ``extra``.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from openrs.records.atomic import write_json_atomic
from openrs.records.run_dir import RunDir

TRACKED_PACKAGES = [
    "openrs",
    "torch",
    "transformers",
    "trl",
    "accelerate",
    "datasets",
    "peft",
    "hydra-core",
    "omegaconf",
    "math-verify",
    "tensorboard",
    "submitit",
    "hydra-submitit-launcher",
    "vllm",
    "deepspeed",
    "liger-kernel",
]


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
        "nodes": json.loads(os.environ.get("OPENRS_RUN_NODES", "null")),  # a run across nodes: hosts and ranks
        **(extra or {}),
    }
    write_json_atomic(RunDir(run_dir).provenance, record)
    return record
