"""Answer correctness for one completion, as the seed recipe judged it (runs inside verifier workers).

Reused from math-verify: gold parsing (`parse`) and `verify`; answer extraction is in `extraction`. Hand-written
here: per-process caches (parsed golds; verify results keyed by gold text and exact parsed answer; a larger memo
of math-verify's LaTeX parse, failures included) and the worker start-up (quiet logs, ANTLR warm-up).

Nothing here bounds time: math-verify's own signal-based timeouts are disabled (they refuse to run off the main
thread); the verifier pool enforces a hard wall-clock limit by killing the worker process instead.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from math_verify import LatexExtractionConfig, parse, verify
from sympy import Basic, MatrixBase, srepr

from openrs.rewards.extraction import extract_answers

_CACHE_SIZE = 4096


def quiet_math_verify_logs() -> None:
    """Silence math-verify's per-call warnings ("timeout disabled", "equations=True deprecated")."""
    for name in ("math_verify", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _ParseMemo:
    """Memo of math-verify's LaTeX -> sympy step, failures included (its own cache keeps 20 successes).

    The ANTLR parse is most of the verifier's time and answers repeat within and across GRPO groups. The wrapped
    function is pure and its only caller (`extract_latex`) turns any exception into "no value", so replaying a
    cached failure as a plain exception gives the same results.
    """

    def __init__(self, fn: Any) -> None:
        self.fn = getattr(fn, "__wrapped__", fn)
        self.memo: _LRU = _LRU()

    def __call__(self, latex: str) -> Any:
        hit = self.memo.get(latex)
        if hit is None:
            try:
                hit = (True, self.fn(latex))
            except Exception as exc:
                hit = (False, type(exc).__name__)
            self.memo.put(latex, hit)
        if hit[0]:
            return hit[1]
        raise ValueError(f"latex2sympy failed earlier on this input ({hit[1]})")


def init_worker() -> None:
    """Run once in each verifier worker: quiet logs, widen math-verify's parse cache (workers only)."""
    quiet_math_verify_logs()
    import math_verify.parser as mv_parser

    if not isinstance(mv_parser.parse_latex_cached, _ParseMemo):
        mv_parser.parse_latex_cached = _ParseMemo(mv_parser.parse_latex_cached)
    # Warm ANTLR's prediction cache (speed only: a parse's result never depends on what was parsed before), so a
    # fresh or replacement worker is not several times slower on its first few hundred completions.
    for latex in _WARMUP:
        try:
            mv_parser.parse_latex_cached.fn(latex)
        except Exception:
            pass


_WARMUP = (
    "12",
    "-3.5",
    "\\frac{1}{2}",
    "x^2+3x-4",
    "(1, 2)",
    "\\sqrt{3}",
    "2\\pi",
    "\\{1,2\\}",
    "[0, 1)",
    "x = 5",
    "\\frac{\\sqrt{2}}{2}",
    "3^{4}",
    "\\text{(A)}",
    "10\\%",
    "\\dfrac{3}{4}",
    "a \\cdot b",
    "\\infty",
    "\\log_2 8",
) + tuple(
    f"\\boxed{{{x}}}" for x in ("12", "\\frac{1}{2}", "x^2+3x-4", "(1, 2)", "\\sqrt{3}", "2\\pi", "\\text{12}", "-3.5")
)


GOLD_CONFIG = (LatexExtractionConfig(),)


class _LRU(OrderedDict):
    """A small bounded mapping (oldest entry dropped first)."""

    def put(self, key: Hashable, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > _CACHE_SIZE:
            self.popitem(last=False)


_gold_cache: _LRU = _LRU()
_verify_cache: _LRU = _LRU()


def parse_gold(gold: str) -> list:
    """The seed's gold parse (LaTeX extraction, first match), cached per process."""
    hit = _gold_cache.get(gold)
    if hit is None:
        hit = parse(gold, extraction_config=GOLD_CONFIG, extraction_mode="first_match", parsing_timeout=None)
        _gold_cache.put(gold, hit)
    return hit


def _answer_key(parsed: list) -> tuple:
    """An exact, hashable identity for a parsed answer (sympy's srepr keeps types and assumptions)."""
    return tuple(srepr(x) if isinstance(x, (Basic, MatrixBase)) else ("str", x) for x in parsed)


def verify_cached(answer: list, gold_text: str, gold: list) -> bool:
    """The seed's `verify(answer, gold)` (its argument order), cached by gold text and exact answer."""
    if not answer:
        return False  # verify() of an empty list is False: nothing to compare
    key = (gold_text, _answer_key(answer))
    hit = _verify_cache.get(key)
    if hit is None:
        try:
            hit = bool(verify(answer, gold, timeout_seconds=None))
        except Exception:  # the seed's accuracy scored a verify error as wrong
            hit = False
        _verify_cache.put(key, hit)
    return hit


def check(task: tuple[str, str, tuple[Any, ...]]) -> tuple[bool, tuple[bool, ...]]:
    """Judge one completion: `(text, gold, boxed_modes)` -> `(gold_parsed, correct per boxed mode)`."""
    text, gold_text, boxed_modes = task
    gold = parse_gold(gold_text)
    if not gold:
        return False, tuple(False for _ in boxed_modes)
    answers = extract_answers(text, boxed_modes)
    return True, tuple(verify_cached(a, gold_text, gold) for a in answers)
