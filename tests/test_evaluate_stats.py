"""pass@k against brute force, pass@1 means, and the seeded bootstrap interval."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from openrs.evaluate.stats import (
    bootstrap_ci,
    default_ks,
    mean_pass_at_k,
    pass_at_k,
    per_problem_pass1,
    summarize,
)


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (the first c correct) that contain a correct sample."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_brute_force(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_edges_and_errors() -> None:
    assert pass_at_k(100, 0, 10) == 0.0
    assert pass_at_k(100, 95, 10) == 1.0
    assert pass_at_k(64, 3, 1) == pytest.approx(3 / 64)
    for bad in ((4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)):
        with pytest.raises(ValueError):
            pass_at_k(*bad)


def test_pass1_and_mean_pass_at_k() -> None:
    outcomes = [[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [True, False, True, False]]
    assert per_problem_pass1(outcomes).tolist() == [0.25, 1.0, 0.0, 0.5]
    assert mean_pass_at_k(outcomes, 1) == pytest.approx(np.mean([0.25, 1.0, 0.0, 0.5]))
    expected = np.mean([brute_pass_at_k(4, c, 2) for c in (1, 4, 0, 2)])
    assert mean_pass_at_k(outcomes, 2) == pytest.approx(expected)
    with pytest.raises(ValueError):
        per_problem_pass1([])
    with pytest.raises(ValueError):
        per_problem_pass1([[1], []])
    # A problems x samples array takes the vectorised path and agrees with the list path.
    grid = np.array([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0]], dtype=bool)
    assert per_problem_pass1(grid).tolist() == [0.25, 1.0, 0.0, 0.5]
    for empty in (np.zeros((0, 4)), np.zeros((3, 0))):
        with pytest.raises(ValueError):
            per_problem_pass1(empty)


def test_bootstrap_exact_on_two_problems() -> None:
    # Resampled means of [0, 1] are 0, .5, 1 with probability 1/4, 1/2, 1/4: the 95% interval is [0, 1].
    assert bootstrap_ci([0.0, 1.0], n_resamples=4000, seed=3) == (0.0, 1.0)
    assert bootstrap_ci([0.3] * 7) == pytest.approx((0.3, 0.3))


def test_bootstrap_is_seeded_and_sensible() -> None:
    rng = np.random.default_rng(0)
    values = rng.random(200) < 0.4
    a = bootstrap_ci(values, seed=7)
    assert a == bootstrap_ci(values, seed=7)
    assert a != bootstrap_ci(values, seed=8)
    low, high = a
    assert low < values.mean() < high
    # Normal approximation: half-width about 1.96 * sd / sqrt(n).
    half = 1.96 * values.std() / np.sqrt(values.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)
    wide = bootstrap_ci(values[:50], seed=7)
    assert wide[1] - wide[0] > high - low
    with pytest.raises(ValueError):
        bootstrap_ci([], seed=0)


def test_summarize() -> None:
    outcomes = [[1] * 8, [0] * 8, [1, 0] * 4, [1] + [0] * 7]
    s = summarize(outcomes, n_resamples=2000, seed=1)
    assert (s.n_problems, s.n_samples) == (4, 8)
    assert s.pass1 == pytest.approx((1 + 0 + 0.5 + 0.125) / 4)
    assert s.ci_low <= s.pass1 <= s.ci_high
    assert sorted(s.pass_at) == [1, 2, 4, 8]
    assert s.pass_at[1] == pytest.approx(s.pass1)
    assert s.pass_at[8] == pytest.approx(0.75)
    d = s.to_dict()
    assert d["pass@1"] == s.pass1 and d["pass@8"] == s.pass_at[8] and d["confidence"] == 0.95


def test_default_ks() -> None:
    assert default_ks(1) == (1,)
    assert default_ks(8) == (1, 2, 4, 8)
    assert default_ks(6) == (1, 2, 4, 6)
