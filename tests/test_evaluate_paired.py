"""Paired difference (bootstrap interval, sign-flip p-value), seed spread, and their one-line formats."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from openrs.evaluate.paired import (
    PairedDifference,
    format_difference,
    format_p,
    format_sentence,
    paired_difference,
    seed_spread,
    sign_flip_p_value,
)


def solved(pattern: list[bool], samples: int) -> list[list[int]]:
    """Problems solved on every sample (True) or on none (False)."""
    return [[int(s)] * samples for s in pattern]


def test_identical_models_give_exactly_zero_and_p_one() -> None:
    rng = np.random.default_rng(0)
    outcomes = [list(rng.integers(0, 2, size=k)) for k in rng.integers(1, 9, size=60)]
    r = paired_difference(outcomes, outcomes)
    assert (r.difference, r.ci_low, r.ci_high, r.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert r.mean_a == r.mean_b and not r.significant and r.n_nonzero == 0
    # Different samples with the same per-problem fraction are identical too.
    assert paired_difference([[1, 0]] * 5, [[0, 1, 1, 0]] * 5).p_value == 1.0


def test_known_improvement_on_30_of_100_problems() -> None:
    # a solves problems 0-39; b solves those and 30 more; b draws twice as many samples.
    a = solved([i < 40 for i in range(100)], 4)
    b = solved([i < 70 for i in range(100)], 8)
    r = paired_difference(a, b, seed=3)
    assert (r.n_problems, r.mean_a, r.mean_b) == (100, 0.4, 0.7)
    assert r.difference == pytest.approx(0.30)
    assert r.ci_low < 0.30 < r.ci_high
    # Paired: the half-width follows the differences (sd sqrt(.3 * .7)), not the two models' own spreads
    # (an unpaired bootstrap would give 1.96 * sqrt((.24 + .21) / 100) = 0.131).
    assert (r.ci_high - r.ci_low) / 2 == pytest.approx(1.96 * np.sqrt(0.21 / 100), rel=0.15)
    # 30 non-zero differences: Monte Carlo, and only all-plus / all-minus reach |sum| = 30.
    assert not r.exact and r.n_permutations == 10_000 and r.n_nonzero == 30
    assert r.p_value == 1 / 10_001 and r.p_value < 0.001 and r.significant
    flipped = paired_difference(b, a, seed=3)
    assert flipped.difference == pytest.approx(-0.30) and flipped.p_value == r.p_value


@pytest.mark.parametrize(
    ("differences", "expected"),
    [
        ([1, 1, 1, 1, 1], 2 / 32),  # only the all-plus and all-minus patterns reach 5
        ([1, 1, 1, -1], 10 / 16),  # |sum| >= 2: sums 4, 2, -2, -4 in 1 + 4 + 4 + 1 of 16 patterns
        ([1, 1, -0.25, 0, 0], 4 / 8),  # magnitudes count: |±1 ±1 ±0.25| >= 1.75 in 4 of 8 (zeros dropped)
        ([0.5], 1.0),
        ([0, 0], 1.0),
    ],
)
def test_sign_flip_exact_matches_hand_count(differences: list[float], expected: float) -> None:
    p, exact, n = sign_flip_p_value(differences)
    m = sum(d != 0 for d in differences)
    assert exact and p == expected and n == (2**m if m else 1)


def test_paired_difference_uses_exact_test_on_few_differences() -> None:
    # b solves 5 problems a fails; 3 more problems are the same for both.
    a = solved([False] * 5 + [True, False, True], 2)
    b = solved([True] * 5 + [True, False, True], 3)
    r = paired_difference(a, b)
    assert (r.p_value, r.exact, r.n_permutations, r.n_nonzero) == (0.0625, True, 32, 5)
    assert r.difference == pytest.approx(5 / 8) and not r.significant


def test_monte_carlo_p_agrees_with_exact_enumeration() -> None:
    d = np.random.default_rng(5).normal(0.3, 1.0, size=14)
    exact, is_exact, _ = sign_flip_p_value(d)
    mc, is_exact_mc, n = sign_flip_p_value(d, n_permutations=20_000, exact_max=0, seed=1)
    assert is_exact and not is_exact_mc and n == 20_000
    assert 0.05 < exact < 0.95  # a case where the comparison is informative
    assert mc == pytest.approx(exact, abs=0.015)  # about 4 standard errors
    assert round(mc * 20_001) == pytest.approx(mc * 20_001)  # (k + 1) / (n + 1)


def test_seeded_and_validated() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((80, 4)) < 0.4
    b = rng.random((80, 4)) < 0.5
    assert paired_difference(a, b, seed=2) == paired_difference(a, b, seed=2)
    one, other = paired_difference(a, b, seed=2), paired_difference(a, b, seed=9)
    assert (one.ci_low, one.ci_high, one.p_value) != (other.ci_low, other.ci_high, other.p_value)
    with pytest.raises(ValueError, match=r"a has 80 problems, b has 79"):
        paired_difference(a, b[:79])
    with pytest.raises(ValueError, match="no problems"):
        paired_difference([], [])
    with pytest.raises(ValueError, match="at least one sample"):
        paired_difference([[1], []], [[1], [0]])
    with pytest.raises(ValueError, match="alpha"):
        paired_difference(a, b, alpha=1.0)
    with pytest.raises(ValueError, match="confidence"):
        paired_difference(a, b, confidence=95)


def test_bootstrap_interval_covers_the_true_difference_95_percent_of_the_time() -> None:
    # 400 benchmarks of 200 problems from one population: a's success rate is uniform on [0.1, 0.8], b's is
    # a's + 0.2 on two thirds of problems and a's - 0.1 on the rest, so the true difference is 0.1.
    rng = np.random.default_rng(2024)
    n_bench, n = 400, 200
    pa = rng.uniform(0.1, 0.8, size=(n_bench, n))
    pb = pa + np.where(rng.random((n_bench, n)) < 2 / 3, 0.2, -0.1)
    a = rng.random((n_bench, n, 4)) < pa[..., None]
    b = rng.random((n_bench, n, 8)) < pb[..., None]
    results = [paired_difference(a[k], b[k], n_resamples=1000, n_permutations=100, seed=k) for k in range(n_bench)]
    coverage = np.mean([r.ci_low <= 0.1 <= r.ci_high for r in results])
    assert 0.92 <= coverage <= 0.98  # measured: 0.945
    assert np.mean([r.difference for r in results]) == pytest.approx(0.1, abs=0.005)


def test_p_value_is_calibrated_under_the_null() -> None:
    # Both models share each problem's success rate and draw 4 samples: 400 null benchmarks of 50 problems.
    rng = np.random.default_rng(7)
    p = rng.random((400, 50))
    a = rng.random((400, 50, 4)) < p[..., None]
    b = rng.random((400, 50, 4)) < p[..., None]
    ps = np.array(
        [paired_difference(a[k], b[k], n_resamples=10, n_permutations=1000, seed=k).p_value for k in range(400)]
    )
    assert 0.02 <= np.mean(ps < 0.05) <= 0.08  # measured: 0.050
    # With continuous, symmetric differences (no ties) the p-value is uniform across the whole range.
    ps = np.array([sign_flip_p_value(rng.normal(size=40), n_permutations=1000, seed=k)[0] for k in range(1000)])
    for q in (0.05, 0.2, 0.5, 0.8):
        assert np.mean(ps < q) == pytest.approx(q, abs=0.04), q


def score_rows(scores: list[float], samples: int = 10) -> list[list[int]]:
    """0/1 samples whose fraction correct is each of ``scores`` (multiples of 1 / samples)."""
    return [[1] * round(s * samples) + [0] * (samples - round(s * samples)) for s in scores]


def test_seed_spread_on_constant_shifts() -> None:
    base = np.array([0.2, 0.4, 0.6, 0.2, 0.4, 0.6])  # mean 0.4, var (ddof=1) 0.032
    shifts = [-0.1, 0.0, 0.1, 0.2]  # mean 0.05, var (ddof=1) 0.05 / 3
    s = seed_spread([score_rows(list(base + c)) for c in shifts])
    assert (s.n_seeds, s.n_problems) == (4, 6)
    assert s.per_seed == pytest.approx((0.3, 0.4, 0.5, 0.6))
    assert s.mean == pytest.approx(0.45)
    assert s.std == pytest.approx(np.sqrt(0.05 / 3))
    assert s.between_seed_var == pytest.approx(0.05 / 3)
    # The seed-averaged per-problem scores are base + 0.05, so the problem part is 0.032 / 6.
    assert s.between_problem_var == pytest.approx(0.032 / 6)
    assert s.total_std == pytest.approx(np.sqrt(0.05 / 3 + 0.032 / 6))
    assert s.to_dict()["total_var"] == pytest.approx(s.total_var)
    same = seed_spread([score_rows(list(base))] * 3)
    assert (same.std, same.between_seed_var) == (0.0, 0.0)
    assert same.between_problem_var == pytest.approx(0.032 / 6)


def test_seed_spread_matches_binomial_theory() -> None:
    # 30 problems with fixed success rates, one sample per problem, 400 seeds.
    rng = np.random.default_rng(11)
    p = rng.uniform(0.05, 0.95, size=30)
    s = seed_spread(rng.random((400, 30, 1)) < p[:, None])
    noise = p * (1 - p)  # per-problem variance of one sample
    assert s.between_seed_var == pytest.approx(noise.sum() / 30**2, rel=0.15)
    assert s.between_problem_var == pytest.approx((p.var(ddof=1) + noise.mean() / 400) / 30, rel=0.1)
    assert s.mean == pytest.approx(p.mean(), abs=0.01)


def test_seed_spread_validation() -> None:
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seed_spread([[[1], [0]]])
    with pytest.raises(ValueError, match="run 0 has 2 problems, run 2 has 3"):
        seed_spread([[[1], [0]], [[1], [1]], [[1], [0], [1]]])
    with pytest.raises(ValueError, match="at least 2 problems"):
        seed_spread([[[1]], [[0]]])


def result(**changes: object) -> PairedDifference:
    base = PairedDifference(
        n_problems=200,
        mean_a=0.23,
        mean_b=0.61,
        difference=0.38,
        ci_low=0.31,
        ci_high=0.45,
        confidence=0.95,
        p_value=1e-4,
        alpha=0.05,
        significant=True,
        n_nonzero=76,
        exact=False,
        n_permutations=10_000,
    )
    return dataclasses.replace(base, **changes)


def test_format_difference() -> None:
    assert format_difference(result(ci_low=0.310, ci_high=0.450)) == "+0.380 [+0.310, +0.450]  p<0.001  (significant)"
    dull = result(difference=0.038, ci_low=-0.021, ci_high=0.097, p_value=0.21, significant=False)
    assert format_difference(dull, "aime24") == "aime24  +0.038 [-0.021, +0.097]  p=0.21  (not significant)"
    assert format_difference(dull, "aime24", label_width=8).startswith("aime24    +0.038")
    zero = result(difference=-0.0, ci_low=-0.0, ci_high=0.0, p_value=1.0, significant=False)
    assert format_difference(zero) == "+0.000 [+0.000, +0.000]  p=1.0  (not significant)"


def test_format_sentence() -> None:
    assert format_sentence(result()) == (
        "held-out accuracy 0.23 → 0.61 (n=200; paired difference +0.38, 95% CI [0.31, 0.45], p < 0.001)"
    )
    dull = result(mean_b=0.25, difference=0.02, ci_low=-0.03, ci_high=0.07, p_value=0.41, significant=False)
    assert format_sentence(dull, "MATH-500") == (
        "MATH-500 0.23 → 0.25 (n=200; paired difference +0.02, 95% CI [-0.03, 0.07], p = 0.41, not significant)"
    )
    # From data: a solves 46 of 200 problems, b those and 76 more.
    computed = paired_difference(solved([i < 46 for i in range(200)], 1), solved([i < 122 for i in range(200)], 1))
    text = format_sentence(computed)
    assert text.startswith("held-out accuracy 0.23 → 0.61 (n=200; paired difference +0.38, 95% CI [0.3")
    assert text.endswith("], p < 0.001)")


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.21, "p=0.21"),
        (1.0, "p=1.0"),
        (0.0004, "p<0.001"),
        (0.0496, "p=0.0496"),
        (0.0504, "p=0.05"),
        (0.0625, "p=0.062"),
        (0.003, "p=0.003"),
    ],
)
def test_format_p(p: float, text: str) -> None:
    assert format_p(p) == text
    assert format_p(p, spaced=True) == text.replace("=", " = ").replace("<", " < ")
