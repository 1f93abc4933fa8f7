"""One writer per run directory: an exclusive lock held for the life of the run.

``<run dir>/.lock`` is locked with ``flock`` by the process that launches the run (the Hydra job, or the one
SLURM task) and stays locked until every process of the run has exited: the ranks inherit the open lock file, so
the lock is theirs too. The kernel releases it when they die, so a ``kill -9``, a node failure or a requeue can
start again at once; a second start while the run is alive fails immediately, naming the holder. The holder's
host, pid, SLURM job and start time are written into the lock file after it is taken.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from openrs.errors import RunError
from openrs.records.run_dir import RunDir


class RunDirLocked(RunError):
    """Another live process trains into this run directory."""


class RunLock:
    """The run dir's lock; :meth:`acquire` then :meth:`record` (or :meth:`release` to back out untouched)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = RunDir(run_dir).lock
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock without waiting; RunDirLocked (naming the holder) if another process has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # opening changes nothing in an existing file
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_holder(fd))
            os.close(fd)
            raise RunDirLocked(
                f"{self.path.parent} is in use by another run ({holder}): two runs would interleave their "
                "checkpoints and logs. Wait for it to finish, or stop it (kill the pid / scancel the job); a "
                "stopped run releases the lock at once, and the same command then resumes it."
            ) from None
        self.fd = fd
        return self

    def record(self) -> None:
        """Write who holds the lock (host, pid, SLURM job, time) into the lock file."""
        assert self.fd is not None, "acquire() first"
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(holder).encode() + b"\n", 0)
        os.fsync(self.fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # the kernel drops the lock once every inherited copy is closed too
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "holder unknown"
    parts = [f"host {holder.get('host')}", f"pid {holder.get('pid')}"]
    if holder.get("slurm_job_id"):
        parts.append(f"SLURM job {holder['slurm_job_id']}")
    parts.append(f"since {holder.get('since')}")
    return ", ".join(parts)
