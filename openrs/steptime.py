"""Where a GRPO step's time goes: generation, reward, and the rest (loss forward/backward, optimizer).

TRL 1.16 times its own methods (``trl.extras.profiling``: ``profiling/Time taken: GRPOTrainer.<method>``), but
those timings go only to W&B, MLflow or Trackio and never reach the trainer's log history; the one timing that
does is ``step_time`` (the seconds inside ``training_step`` over an optimizer step's micro-steps: generation,
scoring and the loss forward/backward, not the optimizer step). This module adds the split TRL does not log,
from two public hooks and no patching:

- Trainer callback events mark where each micro-step begins (``on_step_begin``, ``on_substep_end``);
- every reward function is wrapped (TRL's reward-function contract: a callable that gets the completions and a
  ``log_metric`` hook), so the first one's start and the last one's end bound the reward phase.

Per generation round (TRL generates once per ``steps_per_generation`` micro-steps) the last reward function logs,
through ``log_metric`` (averaged per log step and across ranks, like TRL's own metrics):

- ``perf/generation_seconds``: micro-step start to the first reward call: sampling (vLLM or transformers), the
  weight sync to vLLM, and the no-grad log-prob forwards of the reference (and old) policy;
- ``perf/reward_seconds``: the reward functions themselves.

:func:`phase_seconds` turns one log record into seconds per optimizer step, the loss forward/backward being
``step_time`` minus the two phases above.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)

GENERATION_KEY = "perf/generation_seconds"
REWARD_KEY = "perf/reward_seconds"


class PhaseClock(TrainerCallback):
    """Marks micro-step starts (callback events) and the reward phase (wrapped reward functions)."""

    def __init__(self) -> None:
        self.micro_start: float | None = None
        self.reward_start: float | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        self.micro_start = time.perf_counter()

    def on_substep_end(self, args, state, control, **kwargs):
        self.micro_start = time.perf_counter()

    def wrap(self, reward_funcs: list[Callable]) -> list[Callable]:
        """The same reward functions, timed; unchanged (with a warning) if any is not a plain synchronous callable.

        TRL runs reward models and synchronous functions in order and asynchronous ones after them all, so only an
        all-synchronous list has a first and a last call that bound the phase.
        """
        from torch import nn
        from trl.trainer.utils import is_async_callable

        if not reward_funcs or any(isinstance(f, nn.Module) or is_async_callable(f) for f in reward_funcs):
            log.warning("reward model or async reward function present: %s and %s are not logged", GENERATION_KEY, REWARD_KEY)
            return list(reward_funcs)
        last = len(reward_funcs) - 1
        return [TimedReward(f, self, first=i == 0, last=i == last) for i, f in enumerate(reward_funcs)]

    def report(self, end: float, log_metric: Callable[[str, float], None] | None) -> None:
        """At the end of a round's last reward function: log its generation and reward seconds."""
        if log_metric is None or self.micro_start is None or self.reward_start is None:
            return
        log_metric(GENERATION_KEY, self.reward_start - self.micro_start)
        log_metric(REWARD_KEY, end - self.reward_start)


class TimedReward:
    """A reward function that tells the clock when the reward phase starts (first term) and ends (last term)."""

    def __init__(self, func: Callable, clock: PhaseClock, first: bool, last: bool) -> None:
        from trl.trainer.utils import get_callable_name

        self.func, self.clock, self.first, self.last = func, clock, first, last
        self.__name__ = get_callable_name(func)  # TRL logs rewards/<name>/*

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        if self.first:
            self.clock.reward_start = time.perf_counter()
        rewards = self.func(prompts=prompts, completions=completions, **kwargs)
        if self.last:
            self.clock.report(time.perf_counter(), kwargs.get("log_metric"))
        return rewards


def phase_seconds(record: Mapping[str, Any], rounds_per_step: float = 1.0) -> dict[str, float | None]:
    """Seconds per optimizer step of one logged record: generation, reward, loss (forward/backward), other.

    ``rounds_per_step`` is how many generation rounds an optimizer step holds (gradient accumulation steps over
    ``steps_per_generation``): the logged phase seconds are means per round. ``other`` is the wall time outside
    ``training_step`` (optimizer step, gradient clipping, callbacks), from ``perf/step_seconds`` when present.
    """

    def number(key: str) -> float | None:
        value = record.get(key)
        return float(value) if isinstance(value, (int, float)) else None

    gen, reward, inside, wall = number(GENERATION_KEY), number(REWARD_KEY), number("step_time"), number("perf/step_seconds")
    gen = gen * rounds_per_step if gen is not None else None
    reward = reward * rounds_per_step if reward is not None else None
    loss = inside - gen - reward if None not in (inside, gen, reward) else None
    other = wall - inside if None not in (wall, inside) else None
    return {"generation": gen, "reward": reward, "loss": loss, "other": other, "step_time": inside, "wall": wall}
