"""A run killed with SIGKILL at any moment resumes from its newest complete checkpoint with the same command.

The smoke run is killed three times (before its first checkpoint, right as a checkpoint is being written,
and between checkpoints), restarted each time, and must end at the same step count with every step logged
once (metrics and TensorBoard) and no half-written checkpoint ever marked complete.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openrs.records.metrics_log import read_metrics
from openrs.training.checkpoints import MARKER, WEIGHTS_ONLY, checkpoint_step

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
MAX_STEPS, SAVE_STEPS = 30, 5
# What a complete checkpoint must hold for Trainer to resume from it (single process, no DeepSpeed).
CHECKPOINT_FILES = {
    "model.safetensors",
    "optimizer.pt",
    "scheduler.pt",
    "trainer_state.json",
    "rng_state.pth",
}


def _logged_steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            pass  # a line cut by the kill
    return steps


def _checkpoints(run_dir: Path) -> dict[int, Path]:
    root = run_dir / "checkpoints"
    return {checkpoint_step(p): p for p in root.glob("checkpoint-*")} if root.is_dir() else {}


def _assert_marked_checkpoints_whole(run_dir: Path) -> None:
    for step, path in _checkpoints(run_dir).items():
        if (path / MARKER).exists():
            # An older checkpoint cut down to its weights (grpo.keep_full_state) lacks only the optimizer state.
            needed = CHECKPOINT_FILES - ({"optimizer.pt"} if (path / WEIGHTS_ONLY).exists() else set())
            missing = needed - {p.name for p in path.iterdir()}
            assert not missing, f"{path} is marked {MARKER} but lacks {sorted(missing)}"
            state = json.loads((path / "trainer_state.json").read_text())
            assert state["global_step"] == step


def _start(args: list[str], log_path: Path) -> subprocess.Popen:
    out = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "openrs.train", *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT
    )


def _kill_when(proc: subprocess.Popen, cond, what: str, timeout: float = 300, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"run ended (rc={proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_kill9_at_three_moments_resumes_to_the_same_final_step(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    log_path = tmp_path / "train.log"
    same_command = [
        "experiment=smoke",
        f"hydra.run.dir={run_dir}",
        f"grpo.max_steps={MAX_STEPS}",
        f"grpo.save_steps={SAVE_STEPS}",
    ]

    # 1. Before the first checkpoint: a few steps logged, nothing saved.
    proc = _start(same_command, log_path)
    _kill_when(proc, lambda: len(_logged_steps(run_dir)) >= 2, "two logged steps")
    assert not any((p / MARKER).exists() for p in _checkpoints(run_dir).values())

    # 2. While a checkpoint is being written: kill the moment a new checkpoint dir appears.
    proc = _start(same_command, log_path)
    _kill_when(proc, lambda: 10 in _checkpoints(run_dir), "checkpoint-10 to appear")
    _assert_marked_checkpoints_whole(run_dir)

    # 3. Between checkpoints: the newest complete one is some steps behind the last logged step.
    proc = _start(same_command, log_path)

    def past_a_checkpoint() -> bool:
        marked = [s for s, p in _checkpoints(run_dir).items() if (p / MARKER).exists() and s >= 15]
        return bool(marked) and max(_logged_steps(run_dir), default=0) >= max(marked) + 2

    _kill_when(proc, past_a_checkpoint, "two steps past checkpoint-15 or later")
    _assert_marked_checkpoints_whole(run_dir)
    killed_at = max(_logged_steps(run_dir))

    # 4. The same run dir through resume=<run dir> (from another Hydra dir): runs to the end.
    final = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrs.train",
            "experiment=smoke",
            f"resume={run_dir}",
            f"hydra.run.dir={tmp_path / 'again'}",
            f"grpo.max_steps={MAX_STEPS}",
            f"grpo.save_steps={SAVE_STEPS}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert final.returncode == 0, final.stderr[-3000:]

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == MAX_STEPS
    starts = [json.loads(line) for line in (run_dir / "starts.jsonl").read_text().splitlines()]
    assert len(starts) == 4
    resumed = [s["resumed_step"] for s in starts]
    assert resumed[0] == 0 and resumed[1] == 0, resumed  # nothing was complete before the first two starts
    assert resumed[2] in (5, 10) and 15 <= resumed[3] < killed_at, (resumed, killed_at)
    assert summary["resumed_from"].endswith(f"checkpoint-{resumed[3]}")

    # Every checkpoint complete and whole; none left half-written.
    ckpts = _checkpoints(run_dir)
    assert sorted(ckpts) == list(range(SAVE_STEPS, MAX_STEPS + 1, SAVE_STEPS))
    assert all((p / MARKER).exists() for p in ckpts.values())
    _assert_marked_checkpoints_whole(run_dir)

    # Each step logged once, in order, in metrics.jsonl and in TensorBoard (events past a resume point purged).
    assert [r["step"] for r in read_metrics(run_dir) if "reward" in r] == list(range(1, MAX_STEPS + 1))
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/reward")] == list(range(1, MAX_STEPS + 1))


@pytest.mark.slow
def test_older_checkpoints_keep_weights_only_and_resume_uses_the_newest(tmp_path):
    """keep_full_state=1: every checkpoint still loads, only the newest keeps its optimizer; a resume takes it."""
    from transformers import AutoModelForCausalLM

    from openrs.config import compose, to_run_config
    from openrs.training.checkpoints import WEIGHTS_ONLY, latest_complete_checkpoint
    from openrs.training.loop import run_training

    run_dir = tmp_path / "run"
    run_training(to_run_config(compose(["experiment=smoke", "grpo.max_steps=6", "grpo.save_steps=2"])), run_dir)
    ckpts = {s: run_dir / "checkpoints" / f"checkpoint-{s}" for s in (2, 4, 6)}
    for step in (2, 4):
        assert (ckpts[step] / WEIGHTS_ONLY).exists() and not (ckpts[step] / "optimizer.pt").exists()
        AutoModelForCausalLM.from_pretrained(ckpts[step])  # still evaluable
    assert (ckpts[6] / "optimizer.pt").exists() and not (ckpts[6] / WEIGHTS_ONLY).exists()
    assert latest_complete_checkpoint(run_dir / "checkpoints") == ckpts[6]
    summary = run_training(
        to_run_config(compose(["experiment=smoke", "grpo.max_steps=8", "grpo.save_steps=2"])), run_dir
    )
    assert summary["resumed_from"].endswith("checkpoint-6") and summary["global_step"] == 8
    assert (ckpts[6] / WEIGHTS_ONLY).exists()  # checkpoint-8 is now the one full state


# Loaded first by every process of the run (PYTHONPATH): rank 0's fsync of checkpoint-2 takes SLOW_SAVE_S seconds,
# as a 28 GB rs3 checkpoint does on a slow shared filesystem.
SLOW_FSYNC = """
import os, time
from pathlib import Path

import openrs.training.checkpoints as checkpoints

_fsync_tree = checkpoints.fsync_tree


def slow_fsync_tree(path):
    if Path(path).name == "checkpoint-2":
        time.sleep(float(os.environ["SLOW_SAVE_S"]))
    return _fsync_tree(path)


checkpoints.fsync_tree = slow_fsync_tree
"""


@pytest.mark.slow
def test_a_save_slower_than_the_collective_timeout_finishes_and_resumes(tmp_path, monkeypatch):
    """Rank 0 writes a checkpoint for longer than hardware.ddp_timeout_s: the ZeRO-2 run finishes and resumes from
    it. (On CPU transformers leaves gloo at its 30-minute default timeout, so the test above, with its own process
    group, is the one that shows where the other rank waits.)"""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_FSYNC)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("SLOW_SAVE_S", "20")
    run_dir, log_path = tmp_path / "run", tmp_path / "train.log"
    two_ranks = [  # ZeRO-2 over gloo, as the GPU presets run (with the device swapped)
        "experiment=smoke",
        "hardware.num_processes=2",
        "hardware.deepspeed=deepspeed/zero2.json",
        "hardware.bf16=false",
        "max_len=16",
        "hardware.ddp_timeout_s=15",
    ]
    for steps in (4, 6):
        proc = _start(
            [*two_ranks, f"grpo.max_steps={steps}", "grpo.save_steps=2", f"hydra.run.dir={run_dir}"], log_path
        )
        assert proc.wait(timeout=600) == 0, log_path.read_text()[-4000:]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["global_step"] == steps
    assert summary["resumed_from"].endswith("checkpoint-4")
    assert sorted(_checkpoints(run_dir)) == [2, 4, 6]


@pytest.mark.slow
def test_two_plain_ranks_on_cpu_resume_their_optimizer_state_in_a_slurm_job(tmp_path, monkeypatch):
    """Two DDP ranks on CPU (no DeepSpeed) inside a SLURM task save, stop and resume: each loads the optimizer state
    onto its device. There accelerate names the device "cpu:0", which torch.load cannot map onto; the launcher now
    gives CPU ranks plain "cpu"."""
    for key, value in {"SLURM_JOB_ID": "1", "SLURM_NNODES": "1", "SLURM_NTASKS": "1", "SLURM_PROCID": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SLURM_LOCALID", "0")
    run_dir, log_path = tmp_path / "run", tmp_path / "train.log"
    for steps in (2, 3):
        overrides = ["experiment=smoke", "hardware.num_processes=2", "max_len=16", f"grpo.max_steps={steps}"]
        proc = _start([*overrides, "grpo.save_steps=2", f"hydra.run.dir={run_dir}"], log_path)
        assert proc.wait(timeout=600) == 0, log_path.read_text()[-4000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 3 and summary["resumed_from"].endswith("checkpoint-2")


# Two gloo ranks at a save, with a 5 s collective timeout: rank 0's fsync of the checkpoint takes 12 s, then both go
# on to the next step's collective (an all_gather), as a GRPO step does.
SAVE_THEN_COLLECTIVE = r"""
import datetime, sys, time, types
from pathlib import Path

import torch
import torch.distributed as dist

from openrs.training import checkpoints

rank, port, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
timeout = datetime.timedelta(seconds=5)
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timeout)
(out / "checkpoint-2").mkdir(parents=True, exist_ok=True)
if rank == 0:
    fsync_tree = checkpoints.fsync_tree
    checkpoints.fsync_tree = lambda path: (time.sleep(12), fsync_tree(path))
state = types.SimpleNamespace(global_step=2, is_world_process_zero=rank == 0)
checkpoints.CompleteMarkerCallback(1).on_save(types.SimpleNamespace(output_dir=str(out)), state, None)
gathered = [torch.zeros(1, dtype=torch.long) for _ in range(2)]
dist.all_gather(gathered, torch.tensor([rank]))
print("gathered", [int(t) for t in gathered], flush=True)
# Left to interpreter exit, gloo's threads sometimes abort the process ("terminate called without an active
# exception", exit -6) after the work is done: end the groups first.
dist.destroy_process_group()
"""


def test_the_other_ranks_wait_for_a_slow_save_at_its_barrier_not_in_the_next_collective(tmp_path):
    """A checkpoint write longer than the collective timeout: before, rank 1 ran on into the next collective and
    timed out there (the rs3 failure at step 50 on slow storage); now it waits at the save's own barrier."""
    from openrs.runtime.vllm_server import free_port

    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SAVE_THEN_COLLECTIVE, str(rank), port, str(tmp_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[1][-2000:] + outputs[0][-2000:]
    assert all("gathered [0, 1]" in out for out in outputs)
    assert (tmp_path / "checkpoint-2" / MARKER).exists()
