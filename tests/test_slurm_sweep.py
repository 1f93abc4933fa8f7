"""Sweeps through the real SLURM cluster (launchers/slurm/setup_local_cluster.sh), and resume after requeues.

The multirun command of the README goes through ``hydra/launcher=submitit_slurm`` (the 4x A40 preset, so
each job really asks for and gets 4 GPUs; only CPU and memory are scaled down to this machine). Skips,
saying why, where no ``sinfo`` answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_support import SINFO_PROBLEM, wait_for

from openrs.records.metrics_log import read_metrics
from openrs.training.checkpoints import MARKER, checkpoint_step

REPO = Path(__file__).resolve().parent.parent


def _wait(cond, timeout: float, what: str):
    return wait_for(cond, timeout, what, interval=0.2)


_PROBLEM = SINFO_PROBLEM
pytestmark = [
    pytest.mark.slow,
    pytest.mark.slurm,
    pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or ""),
]

# The local cluster grants at most 16 CPUs and ~20 GB a job; the preset's 4 GPUs stay as they are.
SMALL = ["hydra.launcher.cpus_per_task=2", "hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=60"]


def _sacct(job_id: str, fields: str, duplicates: bool = False) -> list[list[str]]:
    args = ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", fields] + (["-D"] if duplicates else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def _tb_steps(run_dir: Path, tag: str = "train/reward") -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_multirun_sweep_runs_each_point_as_a_slurm_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrs.train",
            "--multirun",
            "experiment=smoke",
            "lr=1e-6,5e-6",
            "hydra/launcher=submitit_slurm",
            *SMALL,
            "grpo.max_steps=8",
            "grpo.save_steps=4",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for lr in ("1e-06", "5e-06"):
        run_dir = sweep / f"grpo.max_steps=8,grpo.save_steps=4,lr={lr}"
        assert run_dir.is_dir(), sorted(p.name for p in sweep.iterdir())
        provenance = json.loads((run_dir / "provenance.json").read_text())
        job_id = provenance["slurm_job_id"]
        assert job_id, "the run did not happen inside a SLURM job"
        assert _tb_steps(run_dir) == list(range(1, 9))
        assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 8
        # The accounting database saw the job under its override name, with the preset's 4 GPUs.
        # Accounting is written asynchronously: wait for the final state.
        rows = _wait(
            lambda j=job_id: [r for r in _sacct(j, "JobName,State,AllocTRES") if r[1] == "COMPLETED"],
            30,
            f"sacct to record job {job_id} COMPLETED",
        )
        name, _, tres = rows[0]
        assert name == f"openrs-smoke:grpo.max_steps=8,grpo.save_steps=4,lr={lr}"
        assert "gres/gpu=4" in tres, tres
        # The sbatch script submitit wrote for this job asks for requeue and hands srun every CPU of the task.
        script = (sweep / ".submitit" / job_id / f"{job_id}_submission.sh").read_text()
        assert "#SBATCH --requeue" in script, script
        assert "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK" in script.split("srun", 1)[0], script
        assert "#SBATCH --signal=USR2@900" in script, script


def test_interrupted_twice_resumes_from_newest_checkpoint_each_time(tmp_path):
    import submitit

    sweep, max_steps = tmp_path / "sweep", 80
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openrs.train",
            "--multirun",
            "experiment=smoke",
            "hydra/launcher=submitit_slurm",
            *SMALL,
            f"grpo.max_steps={max_steps}",
            "grpo.save_steps=5",
            f"hydra.sweep.dir={sweep}",
            "hydra.sweep.subdir=run",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run_dir = sweep / "run"
    try:
        job_dir = _wait(lambda: next((sweep / ".submitit").glob("[0-9]*"), None), 60, "the job's submitit folder")
        job_id = job_dir.name

        def starts() -> list[dict]:
            path = run_dir / "starts.jsonl"
            return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

        def complete_steps() -> dict[int, float]:
            """Step -> time its COMPLETE marker was written."""
            return {
                checkpoint_step(p): (p / MARKER).stat().st_mtime
                for p in (run_dir / "checkpoints").glob("checkpoint-*")
                if (p / MARKER).exists()
            }

        def newest_before(t: float) -> int:
            return max((s for s, m in complete_steps().items() if m < t), default=0)

        # 1. submitit's own preemption path: SIGTERM (ignored) + USR2 -> checkpoint at step end, requeue.
        _wait(lambda: run_dir.joinpath("checkpoints").is_dir() and complete_steps(), 300, "a first checkpoint")
        submitit.SlurmJob(folder=job_dir.parent / "%j", job_id=job_id)._interrupt()
        _wait(lambda: len(starts()) >= 2, 180, "the job to start again after the USR2 interrupt")
        second = starts()[1]
        assert second["resumed_step"] == newest_before(second["time"]) > 0, (second, complete_steps())
        assert second["slurm_restart_count"] == 1

        # 2. An outside requeue: no checkpoint on the way out (SIGKILL after KillWait); resume from the newest.
        _wait(lambda: max(complete_steps()) > second["resumed_step"], 300, "a checkpoint after the first resume")
        subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=60)
        _wait(lambda: len(starts()) >= 3, 180, "the job to start again after scontrol requeue")
        third = starts()[2]
        assert third["resumed_step"] == newest_before(third["time"]) > second["resumed_step"], (
            third,
            complete_steps(),
        )
        assert third["slurm_restart_count"] == 2

        out, _ = parent.communicate(timeout=600)
        assert parent.returncode == 0, out[-4000:]
    finally:
        if parent.poll() is None:
            parent.kill()
        subprocess.run(["scancel", "--name", "openrs-smoke"], capture_output=True, timeout=30)

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == max_steps
    assert [r["step"] for r in read_metrics(run_dir) if "reward" in r] == list(range(1, max_steps + 1))
    assert _tb_steps(run_dir) == list(range(1, max_steps + 1))

    def states() -> list[str]:
        return [row[0] for row in _sacct(job_id, "State", duplicates=True)]

    _wait(lambda: states()[-1:] == ["COMPLETED"], 30, "sacct to record the job COMPLETED")  # written async
    assert states().count("REQUEUED") == 2, states()
