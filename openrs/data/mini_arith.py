"""The a+b*c task of Open RS in miniature: problems, golds and a deterministic train/held-out split.

Every operand triple (a, b, c) with a in [a_min, a_max] and b, c in [bc_min, bc_max] is one problem,
``What is $a + b \\times c$?``, with gold ``$\\boxed{a + b*c}$``. The split ranks all triples by the SHA-256
of ``"<split_salt>:<a>,<b>,<c>"``: the ``held_out`` triples with the smallest digests are held out for
evaluation, the rest are for training. Both sides are computed from the same ranking, so they are disjoint by
construction and the same on every machine; the held-out list is in ranking order, so its first N problems
are an unbiased sample of it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from openrs.config import MiniArithConfig

Triple = tuple[int, int, int]
Split = Literal["train", "held_out"]


def problem_text(a: int, b: int, c: int) -> str:
    """The user turn of one problem."""
    return f"What is ${a} + {b} \\times {c}$?"


def gold_text(value: int) -> str:
    """The gold the accuracy reward and the evaluation parse (LaTeX, boxed)."""
    return f"$\\boxed{{{value}}}$"


def split_digest(triple: Triple, salt: str) -> bytes:
    """The key a triple is ranked by when splitting."""
    a, b, c = triple
    return hashlib.sha256(f"{salt}:{a},{b},{c}".encode()).digest()


@lru_cache(maxsize=16)
def _ranked(a_min: int, a_max: int, bc_min: int, bc_max: int, salt: str) -> tuple[Triple, ...]:
    triples = [
        (a, b, c) for a in range(a_min, a_max + 1) for b in range(bc_min, bc_max + 1) for c in range(bc_min, bc_max + 1)
    ]
    return tuple(sorted(triples, key=lambda t: split_digest(t, salt)))


def triples(cfg: MiniArithConfig, split: Split) -> list[Triple]:
    """The triples of one side of the split, in ranking order."""
    if cfg.a_min > cfg.a_max or cfg.bc_min > cfg.bc_max:
        raise ValueError(f"mini_arith: empty operand range in {cfg}")
    ranked = _ranked(cfg.a_min, cfg.a_max, cfg.bc_min, cfg.bc_max, cfg.split_salt)
    if not 0 < cfg.held_out < len(ranked):
        raise ValueError(f"mini_arith.held_out must be in (0, {len(ranked)}), got {cfg.held_out}")
    if split == "held_out":
        return list(ranked[: cfg.held_out])
    if split == "train":
        return list(ranked[cfg.held_out :])
    raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")


def row(a: int, b: int, c: int) -> dict:
    """One problem as a dataset row: problem text, gold solution, plain answer and the operands."""
    value = a + b * c
    return {
        "problem": problem_text(a, b, c),
        "solution": gold_text(value),
        "answer": str(value),
        "a": a,
        "b": b,
        "c": c,
    }


def rows(cfg: MiniArithConfig, split: Split) -> list[dict]:
    """Dataset rows of one side of the split."""
    return [row(*t) for t in triples(cfg, split)]
