"""Checkpoint on preemption, then let submitit requeue the job.

submitit signals a job (USR2 by default) shortly before its time limit or when it is preempted, and its
own handler resubmits the job at once. This callback stands in front of that handler: it lets the current
optimizer step finish, saves a checkpoint, and only then hands over to submitit. Ranks of a multi-process
run learn of the request through a stop file written by the node's launcher, and agree on the step to
stop at with one all-reduce per step.

SIGTERM, what SLURM sends every process of a job it preempts (and of one cancelled or requeued from outside),
takes the same path up to the checkpoint; the run then exits without asking for a requeue (SLURM requeues a
preempted job itself; a cancelled one must stay cancelled). submitit's own SIGTERM handler only logs the signal.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)

STOP_FILE_ENV = "OPENRS_STOP_FILE"  # set by the launcher for its ranks


def preemption_signal() -> int:
    """The signal submitit uses for preemption and time-outs (``SUBMITIT_PREEMPT_SIGNAL``, default USR2)."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return int(getattr(signal, f"SIG{name}", signal.SIGUSR2))


class PreemptSignal:
    """The preemption signal and SIGTERM, taken over in front of the handler found for the former (submitit's,
    which requeues).

    The one place that chains to submitit: the training process (PreemptionCallback) and the rank launcher
    (openrs.runtime.launch) both note the signal here, do their part, then :meth:`hand_over`.
    """

    def __init__(self) -> None:
        self.signum = preemption_signal()
        self.requested = False
        self.received: int | None = None  # the preemption signal once it came, else SIGTERM
        self.chained: Callable[..., Any] | None = None

    def install(self, on_signal: Callable[[], None]) -> bool:
        """Handle both signals by noting them and calling ``on_signal``; False off the main thread (Python handles
        signals only there)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            return False
        current = signal.getsignal(self.signum)
        self.chained = current if callable(current) else None

        def handler(signum: int, frame: Any) -> None:
            self.requested = True
            if self.received != self.signum:
                self.received = signum
            on_signal()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(self.signum, handler)
        return True

    def hand_over(self, exit_code: int = 1) -> None:
        """After the preemption signal, run the chained handler (submitit: requeue and exit); otherwise exit.

        Submitit requeues from its first task only (its handler returns on the others): a run's other nodes pass
        ``exit_code=0``, so that srun's ``--kill-on-bad-exit`` does not end node 0 before it has requeued.
        """
        if self.received == self.signum and self.chained is not None:
            self.chained(self.signum, None)
        raise SystemExit(exit_code)


class PreemptionCallback(TrainerCallback):
    """Stop at the end of the current step with a checkpoint once preemption has been requested."""

    def __init__(self, stop_file: Path | None = None) -> None:
        self.stop_file = Path(stop_file) if stop_file else None
        self.signal = PreemptSignal()
        self.stopped = False  # training ended because of it (a checkpoint was saved)
        self.training = False

    @property
    def requested(self) -> bool:
        """This process got the signal."""
        return self.signal.requested

    # -- signal side ---------------------------------------------------------------------------------
    def install(self) -> None:
        """Take over the preemption signal; the handler found there (submitit's) runs after the save."""
        self.signal.install(self._on_signal)

    def _on_signal(self) -> None:
        log.warning("preemption signal %s: checkpoint at the end of this step, then requeue", self.signal.signum)
        if not self.training:  # nothing to save (loading, or already done): hand over now
            self.hand_over()

    def hand_over(self) -> None:
        """Run the chained handler (submitit: requeue and exit); without one, exit."""
        self.signal.hand_over()

    # -- trainer side --------------------------------------------------------------------------------
    def _stop_wanted(self, args: Any) -> bool:
        wanted = self.requested or bool(self.stop_file and self.stop_file.exists())
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            import torch

            device = args.device if dist.get_backend() == "nccl" else "cpu"
            flag = torch.tensor([1.0 if wanted else 0.0], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            wanted = bool(flag.item())
        return wanted

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        self.training = True

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        if self._stop_wanted(args):
            control.should_save = True
            control.should_training_stop = True
            self.stopped = True
        return control

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        self.training = False
