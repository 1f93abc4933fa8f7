"""Continue a run from its newest complete checkpoint, with TensorBoard steps that stay continuous.

Every start of a run (first start, same command again, ``resume=<dir>``, a SLURM requeue, a restart
after ``kill -9``) goes through :func:`prepare_resume`: it throws away checkpoints that a kill left
half-written and returns the newest complete one. :func:`continue_tensorboard` then makes TensorBoard
forget what a killed attempt logged after that checkpoint, so each step appears once.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from openrs.records.run_dir import RunDir
from openrs.training import checkpoints

log = logging.getLogger(__name__)


def discard_incomplete(checkpoints_dir: Path) -> list[Path]:
    """Delete ``checkpoint-<step>`` dirs without a COMPLETE marker (a kill mid-save); return them."""
    removed = checkpoints.incomplete_checkpoints(checkpoints_dir)
    for p in removed:
        log.warning("removing incomplete checkpoint %s (no %s marker: killed while saving)", p, checkpoints.MARKER)
        shutil.rmtree(p, ignore_errors=True)
    return removed


def prepare_resume(run_dir: Path, is_main_process: bool = True) -> Path | None:
    """The checkpoint to resume from (None: start fresh); the main process first clears half-written ones."""
    ckpts = RunDir(run_dir).checkpoints
    if is_main_process:
        discard_incomplete(ckpts)
    return checkpoints.latest_complete_checkpoint(ckpts)


def continue_tensorboard(trainer: Any, tb_dir: Path, resume_step: int) -> None:
    """Open the run's TensorBoard writer so that events a killed attempt logged after ``resume_step`` are purged.

    torch's ``SummaryWriter(purge_step=N)`` writes a session-start event at step N; TensorBoard then hides
    every earlier-written event with step >= N, so a resumed run shows each step once.
    """
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    if not trainer.is_world_process_zero():
        return
    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, TensorBoardCallback):
            if cb.tb_writer is None:
                cb.tb_writer = SummaryWriter(log_dir=str(tb_dir), purge_step=resume_step + 1)
            return


def record_start(run_dir: Path, resumed_from: Path | None) -> None:
    """Append this start to ``<run dir>/starts.jsonl``: when, from which checkpoint, under which SLURM job."""
    import os
    import time

    from openrs.records import jsonl

    record = {
        "time": time.time(),
        "resumed_from": str(resumed_from) if resumed_from else None,
        "resumed_step": checkpoints.checkpoint_step(resumed_from) if resumed_from else 0,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_restart_count": int(os.environ.get("SLURM_RESTART_COUNT", "0")),
    }
    jsonl.append(RunDir(run_dir).starts, record)


def finished_summary(run_dir: Path, max_steps: int) -> dict[str, Any] | None:
    """The run's summary if it already reached ``max_steps`` (-1: the step count it was set for), else None.

    A finished run started again, by a requeue after completion or a sweep re-run to fill missing points, must
    not train past its end or rewrite its results; a larger ``max_steps`` continues it instead.
    """
    import json

    path = RunDir(run_dir).summary
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except ValueError:
        return None
    done, planned = summary.get("global_step"), summary.get("max_steps")
    if summary.get("preempted") or not isinstance(done, int):
        return None
    target = max_steps if max_steps > 0 else planned
    return summary if isinstance(target, int) and done >= target else None
