"""Helpers for the tests that talk to a real SLURM cluster (launchers/slurm/setup_local_cluster.sh)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def sinfo_problem() -> str | None:
    """Why there is no usable cluster, or None when sinfo answers."""
    if shutil.which("sinfo") is None:
        return "sinfo not on PATH (no SLURM here; run launchers/slurm/setup_local_cluster.sh as root)"
    try:
        proc = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s (slurmctld down? run launchers/slurm/setup_local_cluster.sh)"
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        last = msg[-1] if msg else f"rc={proc.returncode}"
        return f"sinfo does not answer ({last}); run launchers/slurm/setup_local_cluster.sh"
    return None


# Asked once per test session: a dead controller makes sinfo take seconds to fail.
SINFO_PROBLEM = sinfo_problem()


def wait_for(cond: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``cond()`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
