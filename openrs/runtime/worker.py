"""One training rank, started by :mod:`openrs.runtime.launch`: ``python -m openrs.runtime.worker <config> <run dir>``.

The launcher sets the torch distributed environment; this trains with the resolved config the launcher
wrote and leaves ``<run dir>/.launch/rank-<r>.json`` (final step, a digest of the weights, which the launcher
compares across ranks, and on a GPU the rank's peak memory).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from openrs.config import RunConfig


def load_config(path: Path) -> RunConfig:
    merged = OmegaConf.merge(OmegaConf.structured(RunConfig), OmegaConf.load(path))
    obj = OmegaConf.to_object(merged)
    assert isinstance(obj, RunConfig)
    return obj


def main(argv: list[str]) -> int:
    from openrs.records import console
    from openrs.records.atomic import write_json_atomic
    from openrs.records.run_dir import RunDir
    from openrs.training.loop import build_trainer, run_training

    config_path, run_dir = Path(argv[0]), Path(argv[1])
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s",
    )
    cfg = load_config(config_path)
    console.quiet_libraries()
    trainer = build_trainer(cfg, run_dir)
    summary = run_training(cfg, run_dir, trainer)
    write_json_atomic(
        RunDir(run_dir).rank_report(rank),
        {
            "rank": rank,
            "host": socket.gethostname(),
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "global_step": trainer.state.global_step,
            "preempted": bool(summary.get("preempted")),
            "weights_digest": weights_digest(trainer.model),
            **cuda_memory(),
        },
    )
    return 0


def weights_digest(model: Any) -> str:
    """SHA-256 over the model's parameters in name order: equal on every rank of a healthy run."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cuda_memory() -> dict[str, int]:
    """This rank's peak CUDA memory in bytes (torch's allocator: tensors, and what it holds cached); {} on CPU."""
    import torch

    if not torch.cuda.is_available():
        return {}
    return {
        "cuda_max_memory_allocated": torch.cuda.max_memory_allocated(),
        "cuda_max_memory_reserved": torch.cuda.max_memory_reserved(),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
