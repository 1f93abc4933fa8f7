"""The seed recipe's correctness terms, computed the naive way: sequential, in this process, every term parsing
the gold and the completion anew (as knoveleng/open-rs did). Used as the parity oracle in tests and as the
baseline in benchmarks; never used for training (no time bound beyond math-verify's own signal timeouts, which
only work on the main thread).
"""

from __future__ import annotations

import math
from typing import Any

from math_verify import parse, verify

from openrs.rewards.extraction import answer_config
from openrs.rewards.mathcheck import GOLD_CONFIG, quiet_math_verify_logs


def seed_correct(text: str, gold: str, boxed: Any) -> bool | None:
    """None when the gold does not parse; else whether math-verify accepts the completion (seed's calls)."""
    quiet_math_verify_logs()
    gold_parsed = parse(gold, extraction_mode="first_match", extraction_config=list(GOLD_CONFIG))
    if len(gold_parsed) == 0:
        return None
    answer = parse(text, extraction_config=[answer_config(boxed)], extraction_mode="first_match")
    try:
        return bool(verify(answer, gold_parsed))  # the seed's argument order: (answer, gold)
    except Exception:
        return False


def seed_accuracy(texts: list[str], golds: list[str]) -> list[float]:
    out = []
    for t, g in zip(texts, golds, strict=True):
        c = seed_correct(t, g, "all")
        out.append(1.0 if c is None else float(c))
    return out


def seed_cosine(
    texts: list[str],
    golds: list[str],
    min_value_wrong: float = 0.0,
    max_value_wrong: float = -0.5,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
    max_len: int = 1000,
) -> list[float]:
    out = []
    for t, g in zip(texts, golds, strict=True):
        c = seed_correct(t, g, True)
        if c is None:
            out.append(1.0)
            continue
        lo, hi = (min_value_correct, max_value_correct) if c else (max_value_wrong, min_value_wrong)
        out.append(float(lo + 0.5 * (hi - lo) * (1.0 + math.cos(len(t) / max_len * math.pi))))
    return out


def seed_length(texts: list[str], golds: list[str]) -> list[float]:
    correct = [seed_correct(t, g, True) for t, g in zip(texts, golds, strict=True)]
    correct = [True if c is None else c for c in correct]
    lengths = [len(t) for t in texts]
    lo, hi = min(lengths), max(lengths)
    if lo == hi:
        return [0.0] * len(texts)
    lams = [0.5 - (n - lo) / (hi - lo) for n in lengths]
    return [float(lam if c else min(0, lam)) for lam, c in zip(lams, correct, strict=True)]
