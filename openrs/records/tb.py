"""What a run writes to TensorBoard beyond the scalars (TRL's, and openrs.records.observe's through ``log_metric``):
the HParams session, sample completions as text, and the run's headline figures at the end.

Everything goes through the writer of transformers' ``TensorBoardCallback`` (its public ``tb_writer``), so a run
keeps one event file; where TensorBoard reporting is off, this callback opens its own writer on ``<run>/tb``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from openrs.records import hparams, run_summary
from openrs.records.observe import Batch, RewardObserver
from openrs.records.run_dir import RunDir


def _text(message: Any) -> str:
    from openrs.rewards.text import completion_text

    if isinstance(message, list):  # a prompt: the last user turn is the problem
        users = [m for m in message if isinstance(m, dict) and m.get("role") == "user"]
        return completion_text(users[-1:] or message)
    return completion_text(message)


def samples_markdown(batch: Batch, n: int, max_chars: int = 2000) -> str:
    """``n`` completions spread over a reward batch as markdown: prompt, completion, every term's reward."""
    parts = []
    stride = max(1, len(batch.completions) // max(n, 1))  # spread over the batch: different prompts, not one group
    for i in list(range(0, len(batch.completions), stride))[:n]:
        scores = " ".join(f"{k}={v[i]:.3f}" for k, v in batch.rewards.items() if i < len(v) and v[i] is not None)
        completion = _text(batch.completions[i])[:max_chars].replace("```", "'''")
        prompt = _text(batch.prompts[i])[:max_chars] if i < len(batch.prompts) else ""
        parts.append(f"**prompt:** {prompt}\n\n```\n{completion}\n```\n\n{scores}")
    return "\n\n---\n\n".join(parts)


class TensorBoardRecords(TrainerCallback):
    """The HParams session (start; end when max_steps is reached), text samples, final ``hparams/*`` figures."""

    def __init__(
        self,
        observer: RewardObserver | None,
        run_hparams: dict[str, hparams.HParamValue],
        tb_dir: Path,
        samples_every: int = 0,
        num_samples: int = 4,
    ) -> None:
        self.observer, self.run_hparams, self.tb_dir = observer, run_hparams, Path(tb_dir)
        self.samples_every, self.num_samples = samples_every, num_samples
        self.trainer: Any = None
        self._own_writer: Any = None

    def bind(self, trainer: Any) -> TensorBoardRecords:
        """The trainer whose TensorBoard writer to share."""
        self.trainer = trainer
        return self

    def _writer(self) -> Any:
        from transformers.integrations import TensorBoardCallback

        if self.trainer is not None:
            for cb in self.trainer.callback_handler.callbacks:
                if isinstance(cb, TensorBoardCallback) and cb.tb_writer is not None:
                    return cb.tb_writer
        if self._own_writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._own_writer = SummaryWriter(log_dir=str(self.tb_dir))
        return self._own_writer

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        if state.is_world_process_zero:
            writer = self._writer()
            writer.file_writer.add_summary(hparams.session_start(self.run_hparams), 0)
            writer.flush()

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 - transformers hook
        if not state.is_world_process_zero or not logs:
            return
        if "train_runtime" in logs:  # the trainer's last log of this train() call
            self._finish(state)
            return
        step = state.global_step
        batch = self.observer.last_batch if self.observer is not None else None
        if self.samples_every and batch is not None and (step == 1 or step % self.samples_every == 0):
            text = samples_markdown(batch, self.num_samples)
            if text:
                self._writer().add_text("samples/completions", text, step)

    def _finish(self, state) -> None:
        writer = self._writer()
        figs = run_summary.headline(run_summary.series_from_log_history(state.log_history))
        for name, value in figs.items():
            if isinstance(value, (int, float)):
                writer.add_scalar(f"hparams/{name}", value, state.global_step)
        if state.max_steps and state.global_step >= state.max_steps:
            writer.file_writer.add_summary(hparams.session_end("STATUS_SUCCESS"), state.global_step)
        writer.flush()

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        if self._own_writer is not None:
            self._own_writer.close()
            self._own_writer = None


def build_monitoring(
    cfg: Any, run_dir: Path, reward_funcs: list[Callable]
) -> tuple[list[Callable], list[TrainerCallback]]:
    """Observed reward functions and the callbacks (bind the TensorBoardRecords one to the trainer after)."""
    d, hw = cfg.diagnostics, cfg.hardware
    observer = RewardObserver(
        cfg.grpo.max_completion_length, d.drift_min_letters, d.text, hw.num_gpus * hw.nodes, hw.price_per_gpu_hour
    )
    funcs = observer.wrap(reward_funcs)
    records = TensorBoardRecords(
        observer, hparams.run_hparams(cfg, run_dir), RunDir(run_dir).tb, d.samples_every, d.num_samples
    )
    return funcs, [observer, records]
