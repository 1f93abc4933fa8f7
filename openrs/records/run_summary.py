"""A run's summary: its headline figures, computed one way for ``summary.json``, TensorBoard and ``openrs.compare``.

Input is a mapping from a logged metric name (TRL's names: ``reward``, ``completions/mean_length``, ...;
TensorBoard shows them as ``train/<name>``) to its ``(step, value)`` points. "Final" is the mean of the last
``window`` logged points and "best" the highest such trailing mean, so one lucky batch does not make a best.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Series = Mapping[str, Sequence[tuple[int, float]]]

# The first of these names a run logged is its accuracy / clipped share.
ACCURACY_KEYS = ("rewards/accuracy/mean", "diagnostics/accuracy")
CLIPPED_KEYS = ("completions/clipped_ratio",)
FIGURE_COLUMNS = (
    "steps",
    "reward_final",
    "reward_best",
    "reward_best_step",
    "accuracy_final",
    "accuracy_best",
    "length_final",
    "clipped_final",
    "drift_final",
    "gpu_hours",
    "cost_usd",
)


def series_from_log_history(log_history: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Per-step points of every numeric metric in a trainer's log history (the end-of-training record left out)."""
    by_key: dict[str, dict[int, float]] = {}
    for rec in log_history:
        if "train_runtime" in rec or "step" not in rec:
            continue
        for key, value in rec.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                by_key.setdefault(key, {})[int(rec["step"])] = float(value)
    return {k: sorted(v.items()) for k, v in by_key.items()}


def trailing_means(values: Sequence[float], window: int) -> list[float]:
    """Mean of each value and up to ``window - 1`` values before it (NaNs skipped)."""
    out = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - window + 1) : i + 1] if math.isfinite(v)]
        out.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return out


def _first(series: Series, keys: Sequence[str]) -> Sequence[tuple[int, float]]:
    return next((series[k] for k in keys if series.get(k)), [])


def _final_best(points: Sequence[tuple[int, float]], window: int) -> tuple[float | None, float | None, int | None]:
    means = trailing_means([v for _, v in points], window)
    finite = [(m, s) for m, (s, _) in zip(means, points, strict=True) if math.isfinite(m)]
    if not finite:
        return None, None, None
    best, best_step = max(finite, key=lambda x: x[0])
    return finite[-1][0], best, best_step


def headline(series: Series, window: int = 10) -> dict[str, float | int | None]:
    """Steps, final/best reward and accuracy, final length, clipped share and drift, GPU-hours and cost."""
    reward = series.get("reward", [])
    out: dict[str, float | int | None] = {"steps": reward[-1][0] if reward else None}
    out["reward_final"], out["reward_best"], out["reward_best_step"] = _final_best(reward, window)
    out["accuracy_final"], out["accuracy_best"], _ = _final_best(_first(series, ACCURACY_KEYS), window)
    out["length_final"] = _final_best(series.get("completions/mean_length", []), window)[0]
    out["clipped_final"] = _final_best(_first(series, CLIPPED_KEYS), window)[0]
    out["drift_final"] = _final_best(series.get("diagnostics/lang_drift_share", []), window)[0]
    for name, key in (("gpu_hours", "cost/gpu_hours"), ("cost_usd", "cost/usd")):
        points = series.get(key, [])
        out[name] = points[-1][1] if points else None
    return out


def summarize(log_history: list[dict[str, Any]], window: int = 10) -> dict[str, Any]:
    """Final and best figures of a run from the trainer's log history."""
    steps = [r for r in log_history if "reward" in r]
    summary: dict[str, Any] = {"logged_steps": len(steps)}
    if steps:
        last = steps[-1]
        summary["final"] = {k: v for k, v in last.items() if isinstance(v, (int, float))}
        rewards = [r["reward"] for r in steps]
        summary["best_reward"] = max(rewards)
        summary["best_reward_step"] = steps[rewards.index(max(rewards))].get("step")
        head, tail = rewards[:window], rewards[-window:]
        summary[f"reward_first_{len(head)}_mean"] = sum(head) / len(head)
        summary[f"reward_last_{len(tail)}_mean"] = sum(tail) / len(tail)
    for rec in log_history:
        if "train_runtime" in rec:
            summary["train_runtime_s"] = rec["train_runtime"]
    # The row `python -m openrs.compare` prints for this run, computed the same way.
    summary["figures"] = headline(series_from_log_history(log_history), window)
    return summary
