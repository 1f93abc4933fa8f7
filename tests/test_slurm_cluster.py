"""The local SLURM cluster (launchers/slurm/setup_local_cluster.sh) behaves like a real one.

These tests talk to a real slurmctld/slurmd/slurmdbd. They skip, saying why, where no `sinfo` answers;
bring the cluster up with `sudo launchers/slurm/setup_local_cluster.sh` to run them.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from slurm_support import SINFO_PROBLEM
from slurm_support import wait_for as _wait

_PROBLEM = SINFO_PROBLEM
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")


def _run(*args: str, timeout: float = 30) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed (rc={proc.returncode}): {proc.stderr.strip()}"
    return proc.stdout


def _sbatch(tmp_path: Path, script: str, *options: str) -> str:
    path = tmp_path / "job.sh"
    path.write_text("#!/bin/bash\n" + script)
    out = _run(
        "sbatch",
        "--parsable",
        f"--chdir={tmp_path}",
        f"--output={tmp_path}/slurm-%j.out",
        "--time=5",
        *options,
        str(path),
    )
    return out.strip().split(";")[0]


def _sacct_states(job_id: str, duplicates: bool = False) -> list[str]:
    """States of the job's allocation as the accounting database has them (every run with -D)."""
    args = ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"] + (["-D"] if duplicates else [])
    return [line.split()[0] for line in _run(*args).splitlines() if line.strip()]


def _squeue_state(job_id: str) -> str:
    return _run("squeue", "-h", "-j", job_id, "-o", "%T").strip()


def _cancel(*job_ids: str) -> None:
    subprocess.run(["scancel", *job_ids], capture_output=True, timeout=30)


def test_node_offers_debug_partition_and_four_gpus():
    lines = _run("sinfo", "-h", "-o", "%P|%a|%G|%c|%m").split()
    debug = [line.split("|") for line in lines if line.split("|")[0] == "debug*"]
    assert debug, f"no default partition 'debug' in sinfo output: {lines}"
    _, avail, gres, cpus, mem = debug[0]
    assert avail == "up"
    assert re.search(r"\bgpu:4\b", gres), f"node does not advertise gpu:4 (GRES: {gres})"
    # The 4-GPU preset asks for a few CPUs and some memory next to its GPUs: room for that is there.
    assert int(cpus.rstrip("+")) >= 8 and int(mem.rstrip("+")) >= 8192
    # A whole-node 4-GPU request with several CPUs per task is grantable (asked, not run).
    proc = subprocess.run(
        [
            "sbatch",
            "--test-only",
            "--nodes=1",
            "--ntasks-per-node=1",
            "--gpus-per-node=4",
            "--cpus-per-task=8",
            "--mem=8G",
            "--time=1-00:00:00",
            "--wrap=true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0 and "to start at" in proc.stderr, proc.stderr


def test_gpu_job_runs_sees_fake_gpus_and_is_accounted(tmp_path):
    job_id = _sbatch(
        tmp_path,
        'echo "CVD=$CUDA_VISIBLE_DEVICES"\necho "PART=$SLURM_JOB_PARTITION"\ntouch written_here\n',
        "--gres=gpu:4",
        "--cpus-per-task=1",
        "--wait",
    )
    out = (tmp_path / f"slurm-{job_id}.out").read_text()
    assert "CVD=0,1,2,3" in out.splitlines(), out
    assert "PART=debug" in out.splitlines(), out
    assert (tmp_path / "written_here").exists(), "job could not write to its submit dir"
    # Accounting is written asynchronously: give slurmdbd a moment.
    _wait(lambda: _sacct_states(job_id) == ["COMPLETED"], 30, f"sacct to report job {job_id} COMPLETED")
    tres = _run("sacct", "-n", "-X", "-P", "-j", job_id, "-o", "AllocTRES")
    assert "gres/gpu=4" in tres, f"accounting lost the GPUs: {tres!r}"


def test_two_default_jobs_run_at_the_same_time(tmp_path):
    # DefMemPerCPU keeps a job that asks for nothing from taking the whole node's memory.
    ids = [_sbatch(tmp_path, "sleep 60\n") for _ in range(2)]
    try:
        _wait(lambda: all(_squeue_state(j) == "RUNNING" for j in ids), 30, f"jobs {ids} to run concurrently")
    finally:
        _cancel(*ids)


def test_submitit_gpu_job_returns_result_and_cancel_is_seen(tmp_path):
    submitit = pytest.importorskip("submitit")

    def probe(x):
        import os as _os

        return x * 2, _os.environ.get("CUDA_VISIBLE_DEVICES"), _os.environ.get("SLURM_JOB_PARTITION")

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit")
    assert executor.cluster == "slurm"
    executor.update_parameters(
        timeout_min=5,
        slurm_partition="debug",
        nodes=1,
        tasks_per_node=1,
        gpus_per_node=4,
        cpus_per_task=1,
        mem_gb=1,
        name="openrs-slurm-test",
    )
    job = executor.submit(probe, 21)
    _wait(job.done, 60, f"submitit job {job.job_id} to finish", interval=1)
    assert job.result() == (42, "0,1,2,3", "debug")
    _wait(lambda: job.state == "COMPLETED", 30, "submitit to read COMPLETED from sacct")

    # A cancelled job must be seen as finished (through sacct), or result() would hang forever.
    executor.update_parameters(gpus_per_node=0)
    sleeper = executor.submit(time.sleep, 300)
    _wait(lambda: _squeue_state(sleeper.job_id) == "RUNNING", 30, "the sleeper job to start")
    sleeper.cancel(check=True)
    _wait(sleeper.done, 60, f"submitit to see job {sleeper.job_id} cancelled", interval=1)
    assert sleeper.state.startswith("CANCELLED"), sleeper.state
    with pytest.raises(submitit.core.utils.UncompletedJobError):
        sleeper.result()


def test_requeue_of_running_job_runs_it_again(tmp_path):
    starts = tmp_path / "starts.txt"
    script = (
        f'echo "start ${{SLURM_RESTART_COUNT:-0}}" >> {starts}\n'
        # First start: sleep until requeued. After the requeue: finish at once.
        'if [ "${SLURM_RESTART_COUNT:-0}" -ge 1 ]; then exit 0; fi\n'
        "sleep 300\n"
    )
    job_id = _sbatch(tmp_path, script, "--requeue")
    try:
        _wait(lambda: starts.exists() and _squeue_state(job_id) == "RUNNING", 30, "the job's first start")
        _run("scontrol", "requeue", job_id)
        # With cred_expire=5 and a 1 s scheduler interval the restart takes seconds, not minutes.
        _wait(
            lambda: starts.exists() and len(starts.read_text().splitlines()) >= 2,
            60,
            "the job to start again",
        )
        assert starts.read_text().splitlines() == ["start 0", "start 1"]
        _wait(lambda: "COMPLETED" in _sacct_states(job_id), 60, f"job {job_id} to complete after its requeue")
        states = _sacct_states(job_id, duplicates=True)
        assert "REQUEUED" in states and states[-1] == "COMPLETED", states
        assert "Restarts=1" in _run("scontrol", "show", "job", job_id)
    finally:
        _cancel(job_id)
