"""Arithmetic problems generated offline (``dataset=arithmetic``): ``What is 7 * 12?`` with a boxed gold.

The smoke run trains on them, and the tiny BPE tokenizer learns its merges from them (openrs.models.tiny).
"""

from __future__ import annotations

import random

from openrs.errors import DatasetError


def generate_arithmetic(num_problems: int, max_operand: int, operators: list[str], seed: int) -> list[dict]:
    """Problems like ``What is 7 * 12?`` with a boxed gold, deterministic by seed."""
    allowed = {"+", "-", "*"}
    bad = [op for op in operators if op not in allowed]
    if bad or not operators:
        raise DatasetError(
            f"dataset.arithmetic.operators: {bad or operators} not allowed; choose from {sorted(allowed)}"
        )
    rng = random.Random(seed)
    rows = []
    for _ in range(num_problems):
        a, b = rng.randint(0, max_operand), rng.randint(0, max_operand)
        op = rng.choice(operators)
        value = a + b if op == "+" else a - b if op == "-" else a * b
        shown = "\\times" if op == "*" else op
        rows.append(
            {
                "problem": f"What is ${a} {shown} {b}$?",
                "solution": f"${a} {shown} {b} = {value}$, so the answer is $\\boxed{{{value}}}$.",
                "answer": str(value),
            }
        )
    return rows
