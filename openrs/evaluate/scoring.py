"""The seed's answer-checking rule (lighteval's extractive match as Open RS configured it), on math-verify.

A prediction is scored against a gold answer like this:

1. The gold is parsed with one extraction target that depends on the benchmark: LaTeX for golds that are
   solutions or LaTeX answers (math500, minerva, olympiadbench), plain expressions for numeric golds
   (aime24, amc23). A gold that yields nothing is kept as its raw string. One addition to the seed: a LaTeX
   gold with no math delimiter at all (a bare answer such as ``\\frac{1}{4} n(n+1)``, the form of local
   OlympiadBench copies) is read as if it were written ``$...$``; golds that carry delimiters are untouched.
2. The prediction is parsed with LaTeX and expression targets together; a ``\\boxed{}`` answer (or the
   "final answer is ... I hope" sentence the prompt asks for) has the highest priority, the rightmost match of
   a priority group wins, and the first matched string is kept as a string candidate ("first_match" fallback).
3. The prediction is correct when any of its candidates verifies against any gold candidate; floats compare
   rounded to 5 decimals.

Two details reproduce lighteval rather than math-verify's own defaults: within a priority group LaTeX targets
are tried before expression targets, and the gold's LaTeX target puts ``\\boxed{}`` at priority 55 (after the
"final answer ... is" sentence at 50). Parity with lighteval 0.13 is pinned in ``tests/test_evaluate_scoring.py``.

math-verify guards parsing and comparison with ``signal.alarm`` unless its timeouts are ``None``; every call
here passes ``None`` so scoring works in any thread. A pathological answer (``9^{9^{9^9}}``) can then run
for ever: score untrusted completions through :class:`openrs.evaluate.pool.ScoringPool`, which enforces a
time limit from outside.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

GoldKind = Literal["latex", "expr"]
GOLD_KINDS: tuple[str, ...] = ("latex", "expr")

# Decimal places that floats are rounded to before comparison (the seed's ``precision=5``).
FLOAT_ROUNDING = 5

# math-verify warns once when its timeouts are disabled; here that is deliberate.
logging.getLogger("math_verify").setLevel(logging.ERROR)

_PRED_TARGETS = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
_GOLD_TARGETS: dict[str, tuple[Any, ...]] = {
    "latex": (LatexExtractionConfig(boxed_match_priority=55),),
    "expr": (ExprExtractionConfig(),),
}
_MATH_DELIMITERS = ("$", "\\(", "\\[", "\\boxed")


@dataclass(frozen=True)
class Verdict:
    """Outcome of scoring one prediction, with what was extracted on each side (for logs)."""

    correct: bool
    extracted: str | None
    gold_extracted: str | None
    timed_out: bool = False


def _parse(text: str, targets: tuple[Any, ...]) -> list[Any]:
    return parse(
        text,
        extraction_config=targets,
        fallback_mode="first_match",
        extraction_mode="any_match",
        parsing_timeout=None,
    )


def delimit_bare_latex(gold: str) -> str:
    """Wrap a LaTeX answer in ``$...$`` when it has no math delimiter, so LaTeX extraction can find it.

    Without this, the seed's rule reads ``\\frac{1}{4} n(n+1)`` as just ``\\frac{1}{4}`` (its bare-fraction
    pattern) and ``M=\\frac{9}{32} \\sqrt{2}`` as nothing at all.
    """
    stripped = gold.strip()
    if not stripped or any(mark in stripped for mark in _MATH_DELIMITERS):
        return gold
    return f"${stripped}$"


@lru_cache(maxsize=4096)
def parse_gold(gold: str, gold_kind: GoldKind) -> tuple[Any, ...]:
    """Gold candidates: the extracted values, or the raw string when nothing can be extracted."""
    if gold_kind not in _GOLD_TARGETS:
        raise ValueError(f"unknown gold kind {gold_kind!r}; expected one of {list(GOLD_KINDS)}")
    text = delimit_bare_latex(gold) if gold_kind == "latex" else gold
    extracted = _parse(text, _GOLD_TARGETS[gold_kind])
    return tuple(extracted) if extracted else (gold,)


def parse_prediction(prediction: str) -> list[Any]:
    """Prediction candidates: the best parsed answer (if any) followed by the first matched string."""
    return _parse(prediction, _PRED_TARGETS)


def _describe(candidates: Any) -> str | None:
    """Readable form of the first candidate (sympy objects render as their ``str``)."""
    if not candidates:
        return None
    try:
        return str(candidates[0])
    except Exception:  # noqa: BLE001 - rendering a sympy object must never break scoring
        return repr(candidates[0])


def judge(prediction: str, gold: str, gold_kind: GoldKind) -> Verdict:
    """Score ``prediction`` against ``gold`` under the given gold extraction kind."""
    gold_candidates = list(parse_gold(gold, gold_kind))
    pred_candidates = parse_prediction(prediction)
    correct = bool(pred_candidates) and verify(
        gold_candidates, pred_candidates, float_rounding=FLOAT_ROUNDING, timeout_seconds=None
    )
    return Verdict(bool(correct), _describe(pred_candidates), _describe(gold_candidates))


def extract_answer(prediction: str) -> str | None:
    """The answer the scorer reads from a completion; ``None`` when nothing matched."""
    return _describe(parse_prediction(prediction))
