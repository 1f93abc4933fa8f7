"""Statistics over sampled completions: pass@1 with a bootstrap interval, and unbiased pass@k.

Inputs are per-problem lists of 0/1 outcomes (one entry per sample). pass@1 is the mean over problems of
each problem's fraction correct; its interval resamples problems (not samples) with replacement, since the
benchmark's problems are the main source of noise. pass@k uses the unbiased estimator of Chen et al. (2021):
``1 - C(n-c, k) / C(n, k)`` for a problem with ``c`` correct out of ``n`` samples.
Comparing two models on the same problems, and the spread over seeds, are in :mod:`openrs.evaluate.paired`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` samples drawn without replacement from ``n`` (``c`` correct) is correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) as a product, which stays exact enough for large n.
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _check(outcomes: Sequence[Sequence[bool | int]]) -> None:
    if len(outcomes) == 0:
        raise ValueError("no problems")
    if any(len(o) == 0 for o in outcomes):
        raise ValueError("every problem needs at least one sample")


def per_problem_pass1(outcomes: Sequence[Sequence[bool | int]] | np.ndarray) -> np.ndarray:
    """Fraction of correct samples for each problem (a problems x samples array is averaged row-wise)."""
    if isinstance(outcomes, np.ndarray) and outcomes.ndim == 2:
        if outcomes.size == 0:
            raise ValueError("no problems" if outcomes.shape[0] == 0 else "every problem needs at least one sample")
        return outcomes.astype(float).mean(axis=1)
    _check(outcomes)
    return np.array([float(np.mean(np.asarray(o, dtype=float))) for o in outcomes])


def mean_pass_at_k(outcomes: Sequence[Sequence[bool | int]], k: int) -> float:
    """Unbiased pass@k averaged over problems (every problem needs at least ``k`` samples)."""
    _check(outcomes)
    return float(np.mean([pass_at_k(len(o), int(sum(bool(x) for x in o)), k) for o in outcomes]))


def _resampled_means(data: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` resamples (with replacement) of ``data``."""
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):  # chunks keep memory flat for large benchmarks
        stop = min(start + 1000, n_resamples)
        picks = rng.integers(0, data.size, size=(stop - start, data.size))
        means[start:stop] = data[picks].mean(axis=1)
    return means


def _interval(means: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of ``values``; deterministic for a given ``seed``."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values")
    return _interval(_resampled_means(data, n_resamples, np.random.default_rng(seed)), confidence)


def bootstrap_ci_of_average(
    groups: Sequence[Sequence[float] | np.ndarray],
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Interval for the unweighted average of group means (the paper's "Avg." over benchmarks).

    Each group (benchmark) is resampled on its own, and the average of the resampled means is taken.
    """
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError("every group needs at least one value")
    rng = np.random.default_rng(seed)
    means = np.mean([_resampled_means(np.asarray(g, dtype=float), n_resamples, rng) for g in groups], axis=0)
    return _interval(means, confidence)


def default_ks(n_samples: int) -> tuple[int, ...]:
    """Powers of two up to ``n_samples``, plus ``n_samples`` itself."""
    ks = {1, n_samples}
    k = 2
    while k < n_samples:
        ks.add(k)
        k *= 2
    return tuple(sorted(ks))


@dataclass(frozen=True)
class Summary:
    """pass@1 with its interval and pass@k for one benchmark."""

    n_problems: int
    n_samples: int
    pass1: float
    ci_low: float
    ci_high: float
    confidence: float
    pass_at: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "n_problems": self.n_problems,
            "n_samples": self.n_samples,
            "pass@1": self.pass1,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            **{f"pass@{k}": v for k, v in sorted(self.pass_at.items())},
        }


def summarize(
    outcomes: Sequence[Sequence[bool | int]],
    ks: Sequence[int] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Summary:
    """pass@1 (mean over samples, then problems) with a bootstrap interval, and pass@k for each ``k``.

    ``ks`` defaults to :func:`default_ks` of the smallest per-problem sample count.
    """
    per_problem = per_problem_pass1(outcomes)
    n_min = min(len(o) for o in outcomes)
    ks = tuple(ks) if ks is not None else default_ks(n_min)
    low, high = bootstrap_ci(per_problem, confidence, n_resamples, seed)
    return Summary(
        n_problems=len(outcomes),
        n_samples=n_min,
        pass1=float(per_problem.mean()),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        pass_at={k: mean_pass_at_k(outcomes, k) for k in ks},
    )


def summarize_average(
    groups: Sequence[Sequence[Sequence[bool | int]]],
    ks: Sequence[int] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Summary:
    """The unweighted average over benchmarks of pass@1 (with a joint bootstrap interval) and of pass@k."""
    if not groups:
        raise ValueError("no benchmarks")
    per_benchmark = [per_problem_pass1(outcomes) for outcomes in groups]
    n_min = min(len(o) for outcomes in groups for o in outcomes)
    ks = tuple(ks) if ks is not None else default_ks(n_min)
    low, high = bootstrap_ci_of_average(per_benchmark, confidence, n_resamples, seed)
    return Summary(
        n_problems=sum(len(outcomes) for outcomes in groups),
        n_samples=n_min,
        pass1=float(np.mean([p.mean() for p in per_benchmark])),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        pass_at={k: float(np.mean([mean_pass_at_k(outcomes, k) for outcomes in groups])) for k in ks},
    )
