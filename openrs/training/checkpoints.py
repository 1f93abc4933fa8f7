"""Checkpoints that are either complete or ignored, and finding the one to resume from.

transformers' Trainer writes ``checkpoint-<step>/`` file by file, so a kill mid-save leaves a
directory that looks like a checkpoint. After each save has finished we write a ``COMPLETE``
marker (fsynced, by rename); resuming only ever considers marked checkpoints. This is written by
hand because neither transformers nor TRL marks finished checkpoints.

Disk: a full rs3 checkpoint is ~28 GB (3.55 GB weights, 3.55 GB DeepSpeed model states, 21.3 GB optimizer
states). Only the newest ``keep_full_state`` complete checkpoints keep their optimizer and DeepSpeed states;
older ones are cut down to weights, config, tokenizer and trainer state (marked ``WEIGHTS_ONLY``): they still
load for evaluation, but resuming uses the newest full one. transformers' ``save_total_limit`` can only delete
whole checkpoints, which would lose the paper's published steps.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from transformers import TrainerCallback

from openrs.records.atomic import fsync_tree, write_text_atomic

log = logging.getLogger(__name__)

MARKER = "COMPLETE"
WEIGHTS_ONLY = "WEIGHTS_ONLY"  # optimizer and DeepSpeed states removed: loads, but cannot be resumed from
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# What makes a checkpoint resumable and big: transformers' optimizer file, DeepSpeed's per-step state dirs.
_STATE_FILES = ("optimizer.pt",)
_STATE_DIRS = ("global_step*",)


def mark_complete(checkpoint_dir: Path) -> None:
    """Flush a finished checkpoint to disk, then atomically add its marker."""
    checkpoint_dir = Path(checkpoint_dir)
    fsync_tree(checkpoint_dir)
    write_text_atomic(checkpoint_dir / MARKER, "ok\n")


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT_RE.match(Path(path).name)
    return int(match.group(1)) if match else None


def complete_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Marked checkpoints under ``checkpoints_dir``, oldest first."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None and (p / MARKER).exists()]
    return sorted(found, key=lambda p: checkpoint_step(p) or 0)


def incomplete_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """``checkpoint-<step>`` dirs without a marker (a kill mid-save), sorted by name."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None and not (p / MARKER).exists()
    )


def latest_complete_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest marked checkpoint that can be resumed from; unmarked (half-written) ones are reported and skipped."""
    for p in incomplete_checkpoints(checkpoints_dir):
        log.warning("ignoring incomplete checkpoint %s (no %s marker)", p, MARKER)
    resumable = [p for p in complete_checkpoints(checkpoints_dir) if not (p / WEIGHTS_ONLY).exists()]
    return resumable[-1] if resumable else None


def prune_states(checkpoints_dir: Path, keep_full_state: int | None) -> list[Path]:
    """Cut all but the newest ``keep_full_state`` complete checkpoints down to their weights; return those cut."""
    if keep_full_state is None:
        return []
    full = [p for p in complete_checkpoints(checkpoints_dir) if not (p / WEIGHTS_ONLY).exists()]
    cut = full[: max(0, len(full) - keep_full_state)]
    for ckpt in cut:
        (ckpt / WEIGHTS_ONLY).write_text("optimizer and DeepSpeed states removed to bound the run's disk\n")
        for name in _STATE_FILES:
            (ckpt / name).unlink(missing_ok=True)
        for pattern in _STATE_DIRS:
            for d in ckpt.glob(pattern):
                if d.is_dir():
                    shutil.rmtree(d, ignore_errors=True)
        log.info("kept weights only in %s (grpo.keep_full_state=%d)", ckpt, keep_full_state)
    return cut


class CompleteMarkerCallback(TrainerCallback):
    """Mark ``checkpoint-<step>`` complete once the Trainer has finished writing it, then prune older states.

    The ranks wait for each other around that work at a barrier of their own, with ``save_timeout_s`` (a gloo group
    made at the first save), not the run's collective timeout: rank 0 alone fsyncs a checkpoint of up to ~28 GB and
    prunes older states, and ranks let go at once would wait for it in the next step's collective, which fails
    after ``ddp_timeout_s`` (600 s: below ~50 MB/s of sustained writes at an rs3 save).
    """

    def __init__(self, keep_full_state: int | None = None, save_timeout_s: float = 3600) -> None:
        self.keep_full_state = keep_full_state
        self.save_timeout_s = save_timeout_s
        self._group = None

    def _barrier(self) -> None:
        import datetime

        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        if self._group is None:  # every rank reaches its first save together: a collective call
            self._group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=self.save_timeout_s))
        dist.barrier(group=self._group)

    def on_save(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        self._barrier()  # every rank has written its shard (ZeRO optimizer states) before we mark
        if state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                mark_complete(ckpt)
                prune_states(Path(args.output_dir), self.keep_full_state)  # only once the new one is complete
        self._barrier()  # no rank goes on to the next step's collectives while rank 0 still writes
