"""What a run adds to TensorBoard beyond TRL's own scalars: diagnostics, throughput, cost, samples, HParams.

How completions reach us (the hook): TRL hands every reward function the batch's completions, their token ids
and a ``log_metric`` callback whose values it averages per log step and across ranks, like its own metrics.
:class:`DiagnosticsObserver` wraps the *last* plain reward function in a transparent callable: the term scores
as before (same name, same values, same weight; nothing joins the weighted sum), then the observer computes
:func:`openrs.diagnostics.batch_diagnostics` on the same completions and logs them as ``diagnostics/*``.
Wrapping the last term means the terms before it already ran, so the shared verifier's cache answers the
``diagnostics/accuracy`` question for free. This keeps to TRL's public reward-function contract instead of
overriding a private trainer method.

:class:`RunMonitorCallback` adds per-step figures through the trainer's metric buffer (``trainer._metrics``,
the dict TRL fills and averages at each log step), so they reach TensorBoard, ``metrics.jsonl``, the log
history and ``summary.json`` alike: ``perf/step_seconds``, ``perf/generated_tokens_per_s``,
``cost/gpu_hours`` and ``cost/usd``. It also writes sample completions as text every N steps (from TRL's
completions buffer ``trainer._logs``), the HParams session, and at the end the run's headline figures as
``hparams/*`` scalars.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from openrs import diagnostics, figures, hparams
from openrs.run_dir import RunDir

log = logging.getLogger(__name__)
COST_KEYS = ("cost/gpu_hours", "cost/usd")


class DiagnosticsObserver:
    """Computes text diagnostics on each batch of completions a reward function sees, and counts tokens."""

    def __init__(self, max_len: int | None, drift_min_letters: int = 2, accuracy_term: Any = None) -> None:
        self.max_len = max_len
        self.drift_min_letters = drift_min_letters
        self.accuracy_term = accuracy_term  # a verifier-backed term whose cached verdicts give accuracy
        self._tokens = 0

    def take_generated_tokens(self) -> int:
        """Completion tokens this process generated since the last call."""
        n, self._tokens = self._tokens, 0
        return n

    def observe(self, completions: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, float]:
        from openrs.rewards.text import completion_texts

        texts = completion_texts(completions)
        ids = kwargs.get("completion_ids")
        lengths = [len(x) for x in ids] if ids is not None else None
        self._tokens += sum(lengths) if lengths else 0
        out = diagnostics.batch_diagnostics(texts, lengths, self.max_len, self.drift_min_letters)
        accuracy = self._accuracy(texts, kwargs.get("solution"))
        if accuracy is not None:
            out["accuracy"] = accuracy
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for name, value in out.items():
                log_metric(f"diagnostics/{name}", value)
        return out

    def _accuracy(self, texts: list[str], solution: Sequence[Any] | None) -> float | None:
        if self.accuracy_term is None or solution is None:
            return None
        verdicts = [v for v in self.accuracy_term.verdicts(texts, solution, {}) if v.gold_parsed]
        return sum(v.correct for v in verdicts) / len(verdicts) if verdicts else None

    def wrap(self, reward_funcs: list[Callable]) -> list[Callable]:
        """The same reward functions, the last synchronous one observed (all unchanged if none is)."""
        from torch import nn
        from trl.trainer.utils import is_async_callable

        plain = [
            i for i, f in enumerate(reward_funcs)
            if callable(f) and not isinstance(f, nn.Module) and not is_async_callable(f)
        ]  # fmt: skip
        if not plain:
            log.warning("no synchronous reward function to observe: diagnostics/* will not be logged")
            return list(reward_funcs)
        if self.accuracy_term is None:
            self.accuracy_term = next(
                (
                    f
                    for f in reward_funcs
                    if getattr(f, "needs_verifier", False) and callable(getattr(f, "verdicts", None))
                ),
                None,
            )
        out = list(reward_funcs)
        out[plain[-1]] = ObservedReward(out[plain[-1]], self)
        return out


class ObservedReward:
    """A reward function that, after scoring, shows the completions to an observer. Same name, same values."""

    def __init__(self, func: Callable, observer: DiagnosticsObserver) -> None:
        from trl.trainer.utils import get_callable_name

        self.func, self.observer = func, observer
        self.__name__ = get_callable_name(func)  # TRL logs rewards/<name>/*

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        rewards = self.func(prompts=prompts, completions=completions, **kwargs)
        if completions:
            self.observer.observe(completions, kwargs)
        return rewards


def _text(message: Any) -> str:
    from openrs.rewards.text import completion_text

    if isinstance(message, list):  # a prompt: the last user turn is the problem
        users = [m for m in message if isinstance(m, dict) and m.get("role") == "user"]
        return completion_text(users[-1:] or message)
    return completion_text(message)


def samples_markdown(trainer_logs: dict[str, Any], n: int, max_chars: int = 2000) -> str:
    """``n`` completions spread over TRL's completions buffer as markdown: prompt, completion, rewards."""
    prompts, completions = list(trainer_logs["prompt"]), list(trainer_logs["completion"])
    rewards = {k: list(v) for k, v in trainer_logs["rewards"].items()}
    advantages = list(trainer_logs["advantages"])
    parts = []
    stride = max(1, len(completions) // max(n, 1))  # spread over the buffer: different prompts, not one group
    for i in list(range(0, len(completions), stride))[:n]:
        scores = " ".join(f"{k}={v[i]:.3f}" for k, v in rewards.items() if i < len(v))
        if i < len(advantages):
            scores += f" advantage={advantages[i]:.3f}"
        completion = _text(completions[i])[:max_chars].replace("```", "'''")
        parts.append(f"**prompt:** {_text(prompts[i])[:max_chars]}\n\n```\n{completion}\n```\n\n{scores}")
    return "\n\n---\n\n".join(parts)


class RunMonitorCallback(TrainerCallback):
    """Step time, generated tokens/s, cumulative GPU-hours and $; text samples; the run's HParams session."""

    def __init__(
        self,
        observer: DiagnosticsObserver | None,
        run_hparams: dict[str, hparams.HParamValue],
        tb_dir: Path,
        num_gpus: int = 0,
        price_per_gpu_hour: float = 0.0,
        samples_every: int = 0,
        num_samples: int = 4,
    ) -> None:
        self.observer, self.run_hparams, self.tb_dir = observer, run_hparams, Path(tb_dir)
        self.num_gpus, self.price = num_gpus, price_per_gpu_hour
        self.samples_every, self.num_samples = samples_every, num_samples
        self.trainer: Any = None
        self._own_writer: Any = None
        self._gpu_hours_before = 0.0
        self._t_train = self._t_step = 0.0

    def bind(self, trainer: Any) -> RunMonitorCallback:
        """Give the callback the trainer whose metric and completion buffers it reads and fills."""
        self.trainer = trainer
        return self

    # writer: the TensorBoardCallback's own (one event file a run), or ours where reporting to TB is off
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

    def on_train_begin(self, args, state, control, **kwargs):
        self._t_train = time.time()
        # A resumed run continues the GPU-hours its checkpoint's log history reached.
        self._gpu_hours_before = next(
            (
                r[COST_KEYS[0]]
                for r in reversed(state.log_history)
                if isinstance(r.get(COST_KEYS[0]), (int, float))
            ),
            0.0,
        )
        if state.is_world_process_zero:
            writer = self._writer()
            writer.file_writer.add_summary(hparams.session_start(self.run_hparams), 0)
            writer.flush()

    def on_step_begin(self, args, state, control, **kwargs):
        self._t_step = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer is None:
            return
        seconds = time.perf_counter() - self._t_step
        tokens = self.observer.take_generated_tokens() * args.world_size if self.observer else 0
        gpu_hours = self._gpu_hours_before + (time.time() - self._t_train) * self.num_gpus / 3600
        metrics = self.trainer._metrics["train"]  # TRL averages these at the next log step
        metrics["perf/step_seconds"].append(seconds)
        metrics["perf/generated_tokens_per_s"].append(tokens / seconds if seconds > 0 else 0.0)
        metrics[COST_KEYS[0]] = [gpu_hours]  # cumulative: the latest value, not a mean
        metrics[COST_KEYS[1]] = [gpu_hours * self.price]

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "train_runtime" in logs:  # the trainer's last log of this train() call
            self._finish(state)
            return
        step = state.global_step
        if self.samples_every and self.trainer is not None and (step == 1 or step % self.samples_every == 0):
            text = samples_markdown(self.trainer._logs, self.num_samples)
            if text:
                self._writer().add_text("samples/completions", text, step)

    def _finish(self, state) -> None:
        """Headline figures as ``hparams/*`` scalars; the HParams session ends when max_steps was reached."""
        writer = self._writer()
        figs = figures.headline(figures.series_from_log_history(state.log_history))
        for name, value in figs.items():
            if isinstance(value, (int, float)):
                writer.add_scalar(f"hparams/{name}", value, state.global_step)
        if state.max_steps and state.global_step >= state.max_steps:
            writer.file_writer.add_summary(hparams.session_end("STATUS_SUCCESS"), state.global_step)
        writer.flush()

    def on_train_end(self, args, state, control, **kwargs):
        if self._own_writer is not None:
            self._own_writer.close()
            self._own_writer = None


def build_monitoring(
    cfg: Any, run_dir: Path, reward_funcs: list[Callable]
) -> tuple[list[Callable], RunMonitorCallback]:
    """Observed reward functions and the monitor callback for a run (bind the callback to the trainer after)."""
    d = cfg.diagnostics
    observer = DiagnosticsObserver(cfg.grpo.max_completion_length, d.drift_min_letters)
    callback = RunMonitorCallback(
        observer,
        hparams.run_hparams(cfg, run_dir),
        RunDir(run_dir).tb,
        num_gpus=cfg.hardware.num_gpus,
        price_per_gpu_hour=cfg.hardware.price_per_gpu_hour,
        samples_every=d.samples_every,
        num_samples=d.num_samples,
    )
    return observer.wrap(reward_funcs), callback
