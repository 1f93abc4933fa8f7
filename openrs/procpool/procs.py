"""Child-process plumbing shared by the launcher, the vLLM server and the verifier workers.

Kept free of heavy imports: the verifier workers import it at start-up.
"""

from __future__ import annotations

import os
import signal
import sys

JOBS_ENV = "OPENRS_JOBS_SHARING_NODE"  # set by hydra_plugins.openrs_launcher.local_launcher for concurrent jobs


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the thread that started it exits (PR_SET_PDEATHSIG; no-op elsewhere).

    Call it in the child (a ``preexec_fn``, or first thing in the child's main): a ``kill -9`` of the parent then
    leaves no orphan behind.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort: without it the child just outlives a killed parent
        pass


def ignore_stop_signals() -> None:
    """SLURM signals every process of a job; only the launcher acts on TERM and USR2 (it relays them)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity, as SLURM's cpus_per_task sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_share(ranks: int = 1) -> int:
    """Cores for one rank of this run: this process's cores, split among the jobs sharing the machine and the
    run's ranks on it (at least 1)."""
    jobs = int(os.environ.get(JOBS_ENV, "1") or 1)
    return max(1, available_cores() // max(1, jobs) // max(1, ranks))
