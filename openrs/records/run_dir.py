"""The layout of a run directory, in one place: every module asks :class:`RunDir` where a file lives.

::

    <run dir>/
      .hydra/            config.yaml, hydra.yaml, overrides.yaml (Hydra's own)
      .lock              held by the run's processes while they live (openrs.runtime.run_lock)
      .launch/           the ranks' config.yaml, the preemption stop file, rank-<r>.json reports,
                         start.json (a run across nodes: node 0's word that the others may start),
                         vllm-weights/ (CPU vLLM runs: the weights handed to the server)
      provenance.json    versions, commit, command, hardware, the GRPOConfig TRL trained with, ...
      starts.jsonl       one line per start (resume point, SLURM job)
      metrics.jsonl      every logged metrics dict with its step
      tb/                TensorBoard events
      checkpoints/checkpoint-<step>/   Trainer checkpoints with their COMPLETE marker
      final/             the final model and tokenizer
      summary.json       final and best figures
      vllm-server.log    the vLLM server's output (server mode)
      eval/              evaluations: <checkpoint>/..., after_training.json, logs/
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # Hydra's own files
    @property
    def hydra(self) -> Path:
        return self.root / ".hydra"

    @property
    def hydra_config(self) -> Path:
        return self.hydra / "config.yaml"

    @property
    def hydra_runtime(self) -> Path:
        return self.hydra / "hydra.yaml"

    @property
    def hydra_overrides(self) -> Path:
        return self.hydra / "overrides.yaml"

    # processes
    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def launch(self) -> Path:
        return self.root / ".launch"

    @property
    def rank_config(self) -> Path:
        return self.launch / "config.yaml"

    @property
    def stop_file(self) -> Path:
        return self.launch / "stop"

    @property
    def start_file(self) -> Path:
        """Node 0 of a run across nodes writes here that the run dir is ready and where rank 0 listens."""
        return self.launch / "start.json"

    def rank_report(self, rank: int) -> Path:
        return self.launch / f"rank-{rank}.json"

    @property
    def vllm_weights(self) -> Path:
        """Where a CPU run hands the policy's weights to its vLLM server (openrs.training.vllm_cpu)."""
        return self.launch / "vllm-weights"

    @property
    def vllm_log(self) -> Path:
        return self.root / "vllm-server.log"

    # records
    @property
    def provenance(self) -> Path:
        return self.root / "provenance.json"

    @property
    def starts(self) -> Path:
        return self.root / "starts.jsonl"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tb(self) -> Path:
        return self.root / "tb"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    # models
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"checkpoint-{step}"

    @property
    def final(self) -> Path:
        return self.root / "final"

    # evaluations
    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def after_training(self) -> Path:
        return self.eval / "after_training.json"

    def eval_logs(self, stamp: str) -> Path:
        return self.eval / "logs" / stamp

    def is_run(self) -> bool:
        """Whether this looks like a run directory (it has checkpoints or Hydra's record)."""
        return self.checkpoints.is_dir() or self.hydra.is_dir()
