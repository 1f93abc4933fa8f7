"""Checkpoint saves that survive a full disk: refuse a save that cannot fit, and turn ENOSPC into a clear stop.

Before each save the free space on the checkpoints' filesystem is compared with what the save needs (the size of
the newest complete checkpoint, or an estimate from the model before the first one). Not enough: the run stops
before writing, with the path and both figures. A save that runs out of space anyway (another job filled the
disk meanwhile) leaves a checkpoint without its COMPLETE marker; it is deleted at once to give the space back,
and the newest complete checkpoint, untouched, is where the next start resumes.
"""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from openrs.errors import RunError
from openrs.records.run_dir import RunDir
from openrs.training import checkpoints

log = logging.getLogger(__name__)
MARGIN = 1.05  # a save is refused below 5% more free space than it needs


class DiskFullError(RunError):
    """A checkpoint does not fit on its filesystem."""


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def estimate_save_bytes(model: Any, deepspeed: bool) -> int:
    """A first save's size: the weights, AdamW's two fp32 moments (+ fp32 masters and model states with ZeRO)."""
    params = sum(p.numel() for p in model.parameters())
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return weights + 8 * params + ((4 * params + weights) if deepspeed else 0)


def save_bytes_needed(checkpoints_dir: Path, model: Any, deepspeed: bool) -> int:
    """What the next save will take: as large as the newest full checkpoint, else the estimate."""
    newest = checkpoints.latest_complete_checkpoint(checkpoints_dir)
    return tree_bytes(newest) if newest is not None else estimate_save_bytes(model, deepspeed)


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def resume_hint(checkpoints_dir: Path) -> str:
    newest = checkpoints.latest_complete_checkpoint(checkpoints_dir)
    where = f"from {newest}" if newest else "from the start (no complete checkpoint yet)"
    return f"free some space (or move the run) and start the same command again: it resumes {where}"


class DiskSpaceCallback(TrainerCallback):
    """Stops the run, before anything is written, when the coming checkpoint would not fit."""

    def __init__(self, checkpoints_dir: Path, deepspeed: bool) -> None:
        self.dir, self.deepspeed = Path(checkpoints_dir), deepspeed

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: D401 - transformers hook
        if not control.should_save or not state.is_world_process_zero or model is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        need = save_bytes_needed(self.dir, model, self.deepspeed) * MARGIN
        free = shutil.disk_usage(self.dir).free
        if free < need:
            raise DiskFullError(
                f"not enough disk space for {self.dir / f'checkpoint-{state.global_step}'}: about {_gb(need)} "
                f"needed, {_gb(free)} free; {resume_hint(self.dir)}"
            )


def ran_out_of_space(exc: BaseException, run_dir: Path, model: Any, deepspeed: bool) -> bool:
    """Whether ``exc`` is the disk running full: an ENOSPC error, or any error (torch's serializer raises a plain
    RuntimeError, "iostream error") while less space is left than a checkpoint needs."""
    if is_disk_full(exc):
        return True
    if not Path(run_dir).exists():
        return False
    need = save_bytes_needed(RunDir(run_dir).checkpoints, model, deepspeed)
    return shutil.disk_usage(run_dir).free < need


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC (and disk-quota) errors, also when wrapped by another exception."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_during_run(run_dir: Path, step: int) -> DiskFullError:
    """Delete half-written checkpoints to give the space back; the error to raise instead of the ENOSPC."""
    ckpts = RunDir(run_dir).checkpoints
    removed = checkpoints.incomplete_checkpoints(ckpts)
    for ckpt in removed:
        shutil.rmtree(ckpt, ignore_errors=True)
    cut = f"; {', '.join(p.name for p in removed)} was cut short and removed" if removed else ""
    free = shutil.disk_usage(run_dir).free if Path(run_dir).exists() else 0
    return DiskFullError(
        f"no space left on the disk of {run_dir} at step {step}{cut}; {_gb(free)} free now; {resume_hint(ckpts)}"
    )
