"""What a run learns from its reward calls: per batch, the text diagnostics, the phase times and the cost.

The hook is TRL's public reward-function contract: each reward function is called with the batch's prompts,
completions, ``completion_ids``, the dataset's columns and a ``log_metric`` callback, whose values TRL averages
per log step and across ranks like its own metrics. :meth:`RewardObserver.wrap` wraps every reward function in
a transparent callable (same name, same values, same weight; nothing joins the weighted sum). The first one's
call marks the start of the reward phase; after the last one the observer logs, through ``log_metric``:

- ``diagnostics/*`` (with ``diagnostics.text``): language drift, closed ``</think>``, boxed answers
  (openrs.records.diagnostics), and ``diagnostics/accuracy`` from the shared verifier's cached verdicts;
- ``perf/generation_seconds`` (micro-step start to the first reward call: sampling, the weight sync to vLLM, the
  no-grad reference forwards) and ``perf/reward_seconds``; ``perf/generation_tokens_per_s``;
- ``cost/gpu_hours`` and ``cost/usd`` (cumulative, continued across resumes from the log history).

TRL's own metrics (``step_time``, ``completions/clipped_ratio``, ...) are not repeated. The last batch (prompts,
completions, every term's rewards) is kept for the TensorBoard text samples (openrs.records.tb). The step split and its
arithmetic: :func:`phase_seconds`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from openrs.records import diagnostics
from openrs.rewards.text import completion_texts

log = logging.getLogger(__name__)

GENERATION_KEY = "perf/generation_seconds"
REWARD_KEY = "perf/reward_seconds"
TOKENS_KEY = "perf/generation_tokens_per_s"
COST_KEYS = ("cost/gpu_hours", "cost/usd")


@dataclass
class Batch:
    """One reward round: what the terms saw and gave."""

    prompts: list[Any] = field(default_factory=list)
    completions: list[str] = field(default_factory=list)
    rewards: dict[str, list[float | None]] = field(default_factory=dict)


class RewardObserver(TrainerCallback):
    """Wraps the reward functions; marks micro-step starts and the train start from Trainer callback events."""

    def __init__(
        self,
        max_len: int | None,
        drift_min_letters: int = 2,
        text: bool = True,
        num_gpus: int = 0,
        price_per_gpu_hour: float = 0.0,
    ) -> None:
        self.max_len, self.drift_min_letters, self.text = max_len, drift_min_letters, text
        self.num_gpus, self.price = num_gpus, price_per_gpu_hour
        self.accuracy_term: Any = None  # a verifier-backed term, whose cached verdicts give accuracy
        self.last_batch: Batch | None = None
        self._batch = Batch()
        self._micro_start: float | None = None
        self._reward_start: float | None = None
        self._train_start = time.time()
        self._gpu_hours_before = 0.0

    # -- trainer side (callback events) -----------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        self._train_start = time.time()
        # A resumed run continues the GPU-hours its checkpoint's log history reached.
        self._gpu_hours_before = next(
            (r[COST_KEYS[0]] for r in reversed(state.log_history) if isinstance(r.get(COST_KEYS[0]), (int, float))),
            0.0,
        )

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        self._micro_start = time.perf_counter()

    def on_substep_end(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        self._micro_start = time.perf_counter()

    # -- reward side -----------------------------------------------------------------------------------------
    def wrap(self, reward_funcs: list[Callable]) -> list[Callable]:
        """The same reward functions, observed; unchanged (with a warning) if any is not a plain synchronous callable.

        TRL runs reward models and synchronous functions in order and asynchronous ones after them all, so only an
        all-synchronous list has a first and a last call that bound the reward phase.
        """
        from torch import nn
        from trl.trainer.utils import is_async_callable

        if not reward_funcs or any(isinstance(f, nn.Module) or is_async_callable(f) for f in reward_funcs):
            log.warning("reward model or async reward function present: diagnostics/*, perf/* and cost/* not logged")
            return list(reward_funcs)
        self.accuracy_term = next(
            (f for f in reward_funcs if getattr(f, "needs_verifier", False) and callable(getattr(f, "verdicts", None))),
            None,
        )
        last = len(reward_funcs) - 1
        return [ObservedReward(f, self, first=i == 0, last=i == last) for i, f in enumerate(reward_funcs)]

    def begin(self, prompts: Any, completions: Any) -> None:
        self._reward_start = time.perf_counter()
        self._batch = Batch(list(prompts or []), completion_texts(completions))

    def record(self, name: str, rewards: Sequence[float | None]) -> None:
        self._batch.rewards[name] = list(rewards)

    def end(self, kwargs: Mapping[str, Any]) -> dict[str, float]:
        """After the round's last term: compute and log this round's figures; keep the batch for samples."""
        out: dict[str, float] = {}
        texts = self._batch.completions
        if self.text:
            out.update(
                {f"diagnostics/{k}": v for k, v in diagnostics.batch_diagnostics(texts, self.drift_min_letters).items()}
            )
            accuracy = self._accuracy(texts, kwargs.get("solution"))
            if accuracy is not None:
                out["diagnostics/accuracy"] = accuracy
        now = time.perf_counter()
        if self._micro_start is not None and self._reward_start is not None:
            generation = self._reward_start - self._micro_start
            out[GENERATION_KEY], out[REWARD_KEY] = generation, now - self._reward_start
            ids = kwargs.get("completion_ids")
            if ids is not None and generation > 0:
                out[TOKENS_KEY] = sum(len(x) for x in ids) / generation
        gpu_hours = self._gpu_hours_before + (time.time() - self._train_start) * self.num_gpus / 3600
        out[COST_KEYS[0]], out[COST_KEYS[1]] = gpu_hours, gpu_hours * self.price
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for name, value in out.items():
                log_metric(name, float(value))
        self.last_batch = self._batch
        return out

    def _accuracy(self, texts: list[str], solution: Sequence[Any] | None) -> float | None:
        if self.accuracy_term is None or solution is None:
            return None
        verdicts = [v for v in self.accuracy_term.verdicts(texts, solution, {}) if v.gold_parsed]
        return sum(v.correct for v in verdicts) / len(verdicts) if verdicts else None


class ObservedReward:
    """A reward function that shows its batch and its rewards to the observer. Same name, same values."""

    def __init__(self, func: Callable, observer: RewardObserver, first: bool, last: bool) -> None:
        from trl.trainer.utils import get_callable_name

        self.func, self.observer, self.first, self.last = func, observer, first, last
        self.__name__ = get_callable_name(func)  # TRL logs rewards/<name>/*

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        if self.first:
            self.observer.begin(prompts, completions)
        rewards = self.func(prompts=prompts, completions=completions, **kwargs)
        self.observer.record(self.__name__, rewards)
        if self.last:
            self.observer.end(kwargs)
        return rewards


def phase_seconds(record: Mapping[str, Any], rounds_per_step: float = 1.0) -> dict[str, float | None]:
    """Seconds per optimizer step of one logged record: generation, reward and the loss forward/backward.

    ``rounds_per_step`` is how many generation rounds an optimizer step holds (gradient accumulation steps over
    ``steps_per_generation``): the logged phase seconds are means per round. The loss forward/backward is TRL's
    ``step_time`` (the seconds inside ``training_step``) minus the other two.
    """

    def number(key: str) -> float | None:
        value = record.get(key)
        return float(value) if isinstance(value, (int, float)) else None

    gen, reward, inside = number(GENERATION_KEY), number(REWARD_KEY), number("step_time")
    gen = gen * rounds_per_step if gen is not None else None
    reward = reward * rounds_per_step if reward is not None else None
    loss = inside - gen - reward if None not in (inside, gen, reward) else None
    return {"generation": gen, "reward": reward, "loss": loss, "step_time": inside}
