"""Evaluation on the Open RS benchmarks: the seed's scoring rule, statistics, generation and reports.

``python -m openrs.evaluate`` is the entry point; the pieces are importable on their own and this package
imports nothing heavy (no torch, no vLLM) until generation is asked for.
"""

from __future__ import annotations

from openrs.evaluate.benchmarks import BENCHMARKS, PAPER_BENCHMARKS, BenchmarkSpec, build_prompt, get_spec
from openrs.evaluate.scoring import Verdict, extract_answer, judge

__all__ = [
    "BENCHMARKS",
    "PAPER_BENCHMARKS",
    "BenchmarkSpec",
    "Verdict",
    "build_prompt",
    "extract_answer",
    "judge_answer",
    "score",
]


def judge_answer(benchmark: str | BenchmarkSpec, prediction: str, gold: str) -> Verdict:
    """The full verdict (correct, extracted answer, extracted gold) under ``benchmark``'s rule."""
    return judge(prediction, gold, get_spec(benchmark).gold_kind)


def score(benchmark: str | BenchmarkSpec, prediction: str, gold: str) -> bool:
    """True when ``prediction`` is correct for ``gold`` under ``benchmark``'s rule (see ``scoring``)."""
    return judge_answer(benchmark, prediction, gold).correct
