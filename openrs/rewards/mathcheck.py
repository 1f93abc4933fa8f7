"""Answer correctness for one completion, as the seed recipe judged it (runs inside verifier workers).

Reused from math-verify: gold parsing (`parse`), answer extraction (its regexes and `extract_match`) and
`verify`. Hand-written here: (1) one regex scan of the completion shared by every normalization setting the
terms ask for, which reproduces `parse(..., extraction_mode="first_match")` exactly (the regexes do not depend on
the normalization, only the extraction of the winning match does), and (2) per-process caches of parsed golds
and of verify results, keyed by the gold text and the exact parsed answer.

Nothing here bounds time: math-verify's own signal-based timeouts are disabled (they refuse to run off the main
thread); the verifier pool enforces a hard wall-clock limit by killing the worker process instead.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from functools import cache
from itertools import groupby
from typing import Any

from latex2sympy2_extended import NormalizationConfig
from math_verify import LatexExtractionConfig, parse, verify
from sympy import Basic, MatrixBase, srepr

# Private math-verify helpers, used for the shared scan. pyproject pins math-verify <0.10; if a release moves
# them, `extract_answers` falls back to one public `parse` call per setting (same values, slower).
try:
    from math_verify.parser import extract_match, get_extraction_regexes
except ImportError:  # pragma: no cover - depends on the installed math-verify
    extract_match = get_extraction_regexes = None

# The `boxed` normalization values a term may ask for. The seed used "all" for accuracy and the literal True
# for cosine/length; math-verify only extracts \boxed{} inside a plain math environment for "all"/"last", so
# True behaves like "none" there, which is why `\boxed{\text{12}}`-style answers can differ between terms.
BOXED_MODES: tuple[Any, ...] = ("all", "last", "none", True)

_CACHE_SIZE = 4096


def is_boxed_mode(value: Any) -> bool:
    """True for the values in BOXED_MODES (the bool True only, not 1 or 1.0)."""
    return value is True or (isinstance(value, str) and value in BOXED_MODES)


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
    "12", "-3.5", "\\frac{1}{2}", "x^2+3x-4", "(1, 2)", "\\sqrt{3}", "2\\pi", "\\{1,2\\}", "[0, 1)", "x = 5",
    "\\frac{\\sqrt{2}}{2}", "3^{4}", "\\text{(A)}", "10\\%", "\\dfrac{3}{4}", "a \\cdot b", "\\infty", "\\log_2 8",
) + tuple(
    f"\\boxed{{{x}}}" for x in ("12", "\\frac{1}{2}", "x^2+3x-4", "(1, 2)", "\\sqrt{3}", "2\\pi", "\\text{12}", "-3.5")
)


@cache
def answer_config(boxed: Any) -> LatexExtractionConfig:
    """The seed's completion-extraction config for one `boxed` setting (boxed first, no anchor-less guess)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        norm = NormalizationConfig(
            nits=False, malformed_operators=False, basic_latex=True, equations=True, boxed=boxed, units=True
        )
    return LatexExtractionConfig(normalization_config=norm, boxed_match_priority=0, try_extract_without_anchor=False)


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


def _scan_patterns(configs: Sequence[LatexExtractionConfig]):
    """The (pattern, priority) list every config shares, or None when their regexes differ."""
    if get_extraction_regexes is None:
        return None
    regex_sets = [get_extraction_regexes([c])[0][0] for c in configs]
    first = [(p.pattern, prio) for p, prio in regex_sets[0]]
    if any([(p.pattern, prio) for p, prio in r] != first for r in regex_sets[1:]):
        return None
    return regex_sets[0]


# sha256 of math-verify 0.9.0's "math environment containing \boxed{}" regex, the one `boxed_env_scan_start`
# reasons about; any other version of the pattern is scanned from the start of the text.
_BOXED_ENV_SHA256 = "9a5a5d83c484d9c4f89229ccbf6aecb16358bfe202b91ca1c472ea58a21ce1ce"


@cache
def _is_boxed_env_pattern(pattern: str) -> bool:
    return hashlib.sha256(pattern.encode()).hexdigest() == _BOXED_ENV_SHA256


def boxed_env_scan_start(text: str) -> int:
    r"""A position before which no match of the boxed-environment regex can start (len(text): none at all).

    Scanning that regex over ~10k characters is most of a completion's regex time, and R1 completions box their
    answer at the end. Every match is a math environment whose content holds some `\boxed{` at b >= b0 (the
    first one), and the content rules bound where its opener can be: inline `$..$`, `\(..\)`, ` [..] ` cannot
    cross a newline; `$$..$$` cannot contain `$$`; `\[..\]` cannot contain `\]`. `finditer(text, start)` then
    yields exactly the matches of `finditer(text)` (lookbehinds still see text before `start`).
    """
    b0 = text.find("\\boxed{")
    if b0 < 0:
        return len(text)
    newline = text.rfind("\n", 0, b0)  # inline bracket may start on that newline (its \s)
    dollars = text.rfind("$$", 0, b0)
    dollar_start = dollars - 1 if dollars >= 0 else b0
    closer = text.rfind("\\]", 0, b0)
    if closer >= 0:
        bracket_start = closer - 1
    else:
        opener = text.find("\\[")
        bracket_start = opener if opener >= 0 else len(text)
    return max(0, min(newline, dollar_start, bracket_start))


def _finditer(pattern, text: str):
    if _is_boxed_env_pattern(pattern.pattern):
        return pattern.finditer(text, boxed_env_scan_start(text))
    return pattern.finditer(text)


def _first_match(text: str, patterns) -> Any:
    """The match `extraction_mode="first_match"` extracts from: the lowest priority group with any match, and
    in it the match ending rightmost (ties: starting leftmost), exactly as math-verify orders them."""
    ordered = sorted(patterns, key=lambda x: x[1])
    for _, group in groupby(ordered, key=lambda x: x[1]):
        found = [(m, m.start(), m.end()) for pattern, _ in group for m in _finditer(pattern, text)]
        if found:
            found = sorted(found, key=lambda x: (x[2], -x[1]), reverse=True)
            return found[0][0]
    return None


def extract_answers(text: str, boxed_modes: Sequence[Any]) -> list[list]:
    """`parse(text, [answer_config(b)], extraction_mode="first_match")` for each `b`, with one regex scan."""
    configs = [answer_config(b) for b in boxed_modes]
    patterns = _scan_patterns(configs)
    if patterns is None:
        return [parse(text, extraction_config=[c], extraction_mode="first_match", parsing_timeout=None) for c in configs]
    try:
        match = _first_match(text, patterns)
    except Exception:  # parse() turns any extraction error into "no answer"
        return [[] for _ in configs]
    out: list[list] = []
    for cfg in configs:
        if match is None:
            out.append([])
            continue
        try:
            value, fallback = extract_match(match, cfg)
        except Exception:
            out.append([])
            continue
        # parse()'s default fallback_mode="first_match" appends the matched string after the parsed value.
        out.append(([value] if value is not None else []) + ([fallback] if fallback else []))
    return out


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
