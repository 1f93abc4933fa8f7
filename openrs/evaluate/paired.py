"""Is a difference between two evaluations larger than its noise? Paired tests and seed spread.

Two models evaluated on the same problems are compared problem by problem: each problem's pass@1 (fraction
of its samples correct; the two models may draw different numbers of samples) gives a per-problem difference
``d_i = pass1_b[i] - pass1_a[i]``, and everything below is about the mean of ``d``.

- :func:`paired_difference`: the mean difference, a paired percentile-bootstrap interval (problems resampled
  with replacement, the same problems for both models) and a two-sided sign-flip permutation p-value.
- :func:`seed_spread`: pass@1 over several seeds of one model, mean ± std across seeds, and how much of a
  single run's uncertainty comes from the seed versus from which problems the benchmark happens to hold.
- :func:`format_difference` / :func:`format_sentence`: one line for a table, one sentence for a report.

Everything is numpy and deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from openrs.evaluate.stats import _interval, _resampled_means, per_problem_pass1

Outcomes = Sequence[Sequence[bool | int]] | np.ndarray  # per problem, its 0/1 samples

EXACT_MAX = 16  # up to this many non-zero differences, the permutation test enumerates all 2**m sign patterns
_CHUNK = 1 << 16  # sign patterns per block, so memory stays flat


@dataclass(frozen=True)
class PairedDifference:
    """Model b minus model a on the same problems, in pass@1 units (fractions, not percent).

    ``ci_low``/``ci_high``: percentile bootstrap interval at ``confidence`` for the mean per-problem
    difference. ``p_value``: two-sided sign-flip permutation test of "no difference"; ``exact`` says whether
    all ``n_permutations`` (= 2**n_nonzero) sign patterns were enumerated or that many were drawn at random.
    ``significant`` is ``p_value < alpha``. The interval and the test are separate procedures, so close to
    the threshold they can disagree (an interval just excluding 0 with p just above alpha, or the reverse).
    """

    n_problems: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    alpha: float
    significant: bool
    n_nonzero: int
    exact: bool
    n_permutations: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _pair_scores(a: Outcomes, b: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"no problems (a has {len(a)}, b has {len(b)})")
    if len(a) != len(b):
        raise ValueError(f"a and b must cover the same problems: a has {len(a)} problems, b has {len(b)}")
    return per_problem_pass1(a), per_problem_pass1(b)


def sign_flip_p_value(
    differences: Sequence[float] | np.ndarray,
    n_permutations: int = 10_000,
    exact_max: int = EXACT_MAX,
    seed: int = 0,
) -> tuple[float, bool, int]:
    """Two-sided p-value of the paired sign-flip test on per-problem ``differences``.

    Under "no difference" each problem's two results are exchangeable, so each ``d_i`` is as likely to
    have come out as ``-d_i``. The p-value is the share of sign patterns ``s`` whose ``|sum(s_i d_i)|`` is
    at least the observed ``|sum(d_i)|``. Zero differences do not change any sum and are dropped; with
    ``m`` left, all ``2**m`` patterns are enumerated when ``m <= exact_max`` (the observed pattern is one of
    them, so p >= 2 / 2**m), otherwise ``n_permutations`` random patterns are drawn and p = (k + 1) /
    (n_permutations + 1), k being how many reached the observed value. No non-zero difference gives p = 1.

    Returns (p, exact, number of patterns evaluated).
    """
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    m = d.size
    if m == 0:
        return 1.0, True, 1
    observed = abs(d.sum())
    # Sums that are equal in exact arithmetic can differ in the last bits; count those as reaching it.
    reach = observed - 1e-9 * max(1.0, float(np.abs(d).sum()))
    bits = np.arange(m)
    if m <= exact_max:
        total = 1 << m
        hits = 0
        for start in range(0, total, _CHUNK):
            patterns = np.arange(start, min(start + _CHUNK, total))[:, None]
            signs = 1.0 - 2.0 * ((patterns >> bits) & 1)  # bit j of the pattern number flips d_j
            hits += int(np.count_nonzero(np.abs(signs @ d) >= reach))
        return hits / total, True, total
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_permutations, 1000):
        size = min(1000, n_permutations - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(size, m))
        hits += int(np.count_nonzero(np.abs(signs @ d) >= reach))
    return (hits + 1) / (n_permutations + 1), False, n_permutations


def paired_difference(
    a: Outcomes,
    b: Outcomes,
    confidence: float = 0.95,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    n_permutations: int = 10_000,
    exact_max: int = EXACT_MAX,
    seed: int = 0,
) -> PairedDifference:
    """Compare model ``b`` with model ``a`` on the same problems (same order), b - a.

    ``a[i]`` and ``b[i]`` are the 0/1 samples of problem ``i`` (any number >= 1 each). Each problem's
    samples are averaged first; ``difference`` is the mean over problems of ``pass1_b - pass1_a``. The
    interval draws ``n_resamples`` bootstrap resamples of problem indices and uses each for both models
    (i.e. resamples the per-problem differences). The p-value is :func:`sign_flip_p_value`. Seeded: the
    bootstrap uses one stream spawned from ``seed``, the permutations another.

    The sign-flip test is exact when the two models drew the same number of samples per problem; with
    different counts a per-problem difference is only approximately symmetric under "no difference".
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    score_a, score_b = _pair_scores(a, b)
    d = score_b - score_a
    boot_seed, perm_seed = np.random.SeedSequence(seed).spawn(2)
    low, high = _interval(_resampled_means(d, n_resamples, np.random.default_rng(boot_seed)), confidence)
    p, exact, n_perm = sign_flip_p_value(d, n_permutations, exact_max, int(perm_seed.generate_state(1)[0]))
    return PairedDifference(
        n_problems=d.size,
        mean_a=float(score_a.mean()),
        mean_b=float(score_b.mean()),
        difference=float(d.mean()),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        p_value=p,
        alpha=alpha,
        significant=p < alpha,
        n_nonzero=int(np.count_nonzero(d)),
        exact=exact,
        n_permutations=n_perm,
    )


@dataclass(frozen=True)
class SeedSpread:
    """pass@1 of one model over several seeds (independent re-samplings) of the same benchmark.

    With ``s[r, i]`` the pass@1 of problem ``i`` in seed ``r`` (fraction of that seed's samples correct),
    ``S`` seeds and ``n`` problems:

    - ``per_seed[r] = mean_i s[r, i]``: each seed's benchmark pass@1;
    - ``mean``, ``std``: mean and standard deviation (ddof=1) of ``per_seed`` -- the "28.7 ± 4.8 over 10
      seeds" figure;
    - ``between_seed_var = std**2``: how much a single run's pass@1 moves when only the seed changes;
    - ``between_problem_var = var_i(mean_r s[r, i]) / n`` (ddof=1): the squared standard error of the mean
      over problems, from the seed-averaged per-problem scores -- how much pass@1 would move with another
      draw of ``n`` problems of the same kind. It still holds ``1/S`` of the per-problem seed noise, so
      it overstates the problem part by about ``between_seed_var / S``.
    - ``total_var = between_seed_var + between_problem_var``: the variance of one single-seed pass@1 as an
      estimate of the model's accuracy on problems of this kind; ``total_std`` its square root.
    """

    n_seeds: int
    n_problems: int
    per_seed: tuple[float, ...]
    mean: float
    std: float
    between_seed_var: float
    between_problem_var: float

    @property
    def total_var(self) -> float:
        return self.between_seed_var + self.between_problem_var

    @property
    def total_std(self) -> float:
        return float(np.sqrt(self.total_var))

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "per_seed": list(self.per_seed), "total_var": self.total_var}


def seed_spread(runs: Sequence[Outcomes]) -> SeedSpread:
    """Spread of pass@1 over seeds; ``runs[r][i]`` holds seed ``r``'s 0/1 samples for problem ``i``.

    Every run must cover the same problems in the same order (sample counts may differ). See
    :class:`SeedSpread` for what each number is.
    """
    if len(runs) < 2:
        raise ValueError(f"need at least 2 seeds for a spread, got {len(runs)}")
    counts = [len(r) for r in runs]
    if any(c != counts[0] for c in counts):
        odd = next(i for i, c in enumerate(counts) if c != counts[0])
        raise ValueError(
            f"every seed must cover the same problems: run 0 has {counts[0]} problems, run {odd} has {counts[odd]}"
        )
    if counts[0] < 2:
        raise ValueError(f"need at least 2 problems, got {counts[0]}")
    scores = np.stack([per_problem_pass1(r) for r in runs])  # seeds x problems
    per_seed = scores.mean(axis=1)
    return SeedSpread(
        n_seeds=len(runs),
        n_problems=counts[0],
        per_seed=tuple(float(x) for x in per_seed),
        mean=float(per_seed.mean()),
        std=float(per_seed.std(ddof=1)),
        between_seed_var=float(per_seed.var(ddof=1)),
        between_problem_var=float(scores.mean(axis=0).var(ddof=1) / counts[0]),
    )


def format_p(p: float, alpha: float = 0.05, spaced: bool = False) -> str:
    """``p=0.21`` / ``p<0.001`` (``p = 0.21`` / ``p < 0.001`` when ``spaced``).

    Two significant digits, more where rounding would put the shown value on the other side of ``alpha``
    (0.0496 shows as 0.0496, not 0.05).
    """
    eq, lt = (" = ", " < ") if spaced else ("=", "<")
    if p < 0.001:
        return f"p{lt}0.001"
    for digits in range(2, 7):
        text = f"{p:.{digits}g}"
        if (float(text) < alpha) == (p < alpha):
            break
    return f"p{eq}{text if '.' in text else text + '.0'}"  # p=1.0 rather than p=1


def _signed(x: float, digits: int) -> str:
    return f"{x + 0.0:+.{digits}f}"  # + 0.0 turns -0.0 into 0.0, so zero prints as +0.000


def format_difference(result: PairedDifference, label: str = "", label_width: int = 0, digits: int = 3) -> str:
    """One line: ``aime24  +0.038 [-0.021, +0.097]  p=0.21  (not significant)``.

    Difference and interval in pass@1 units with a sign; the verdict at ``result.alpha`` is always spelled
    out, ``(significant)`` or ``(not significant)``. Without a label the line starts at the difference.
    """
    parts = [
        f"{_signed(result.difference, digits)} [{_signed(result.ci_low, digits)}, {_signed(result.ci_high, digits)}]",
        format_p(result.p_value, result.alpha),
        "(significant)" if result.significant else "(not significant)",
    ]
    if label:
        parts.insert(0, label.ljust(label_width))
    return "  ".join(parts)


def format_sentence(result: PairedDifference, what: str = "held-out accuracy", digits: int = 2) -> str:
    """The demo's closing line, e.g.
    ``held-out accuracy 0.23 → 0.61 (n=200; paired difference +0.38, 95% CI [0.31, 0.45], p < 0.001)``.

    When the difference is not significant at ``result.alpha`` the parenthesis ends in ``, not significant``.
    """
    f = f".{digits}f"
    inner = (
        f"n={result.n_problems}; paired difference {_signed(result.difference, digits)}, "
        f"{100 * result.confidence:g}% CI [{result.ci_low + 0.0:{f}}, {result.ci_high + 0.0:{f}}], "
        f"{format_p(result.p_value, result.alpha, spaced=True)}"
    )
    if not result.significant:
        inner += ", not significant"
    return f"{what} {result.mean_a:{f}} → {result.mean_b:{f}} ({inner})"
