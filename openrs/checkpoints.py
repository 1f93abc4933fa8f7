"""Checkpoints that are either complete or ignored, and finding the one to resume from.

transformers' Trainer writes ``checkpoint-<step>/`` file by file, so a kill mid-save leaves a
directory that looks like a checkpoint. After each save has finished we write a ``COMPLETE``
marker (fsynced, by rename); resuming only ever considers marked checkpoints. This is written by
hand because neither transformers nor TRL marks finished checkpoints.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from transformers import TrainerCallback

log = logging.getLogger(__name__)

MARKER = "COMPLETE"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as fh:
                os.fsync(fh.fileno())


def mark_complete(checkpoint_dir: Path) -> None:
    """Flush a finished checkpoint to disk, then atomically add its marker."""
    checkpoint_dir = Path(checkpoint_dir)
    _fsync_tree(checkpoint_dir)
    tmp = checkpoint_dir / f".{MARKER}.tmp"
    with open(tmp, "w") as fh:
        fh.write("ok\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, checkpoint_dir / MARKER)


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT_RE.match(Path(path).name)
    return int(match.group(1)) if match else None


def complete_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Marked checkpoints under ``checkpoints_dir``, oldest first."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None and (p / MARKER).exists()
    ]
    return sorted(found, key=lambda p: checkpoint_step(p) or 0)


def incomplete_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """``checkpoint-<step>`` dirs without a marker (a kill mid-save), sorted by name."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and checkpoint_step(p) is not None and not (p / MARKER).exists()
    )


def latest_complete_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest marked checkpoint; unmarked (half-written) ones are reported and skipped."""
    for p in incomplete_checkpoints(checkpoints_dir):
        log.warning("ignoring incomplete checkpoint %s (no %s marker)", p, MARKER)
    complete = complete_checkpoints(checkpoints_dir)
    return complete[-1] if complete else None


class CompleteMarkerCallback(TrainerCallback):
    """Mark ``checkpoint-<step>`` complete once the Trainer has finished writing it."""

    def on_save(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # every rank has written its shard (ZeRO optimizer states) before we mark
        if state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                mark_complete(ckpt)
