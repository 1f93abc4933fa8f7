"""Where a completion's answer is, as math-verify's `parse(..., extraction_mode="first_match")` finds it, for
several `boxed` normalizations at once.

Reused from math-verify: its extraction regexes, match selection rules and `extract_match` (normalization and
LaTeX parsing of the winning match). Hand-written: (1) one regex scan shared by all normalizations (the regexes
do not depend on the normalization, only the extraction of the winning match does), and (2) a bounded start for
the costliest regex (`boxed_env_scan_start`), proven and fuzz-tested to find the same matches.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from functools import cache
from itertools import groupby
from typing import Any

from latex2sympy2_extended import NormalizationConfig
from math_verify import LatexExtractionConfig, parse

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


def is_boxed_mode(value: Any) -> bool:
    """True for the values in BOXED_MODES (the bool True only, not 1 or 1.0)."""
    return value is True or (isinstance(value, str) and value in BOXED_MODES)


@cache
def answer_config(boxed: Any) -> LatexExtractionConfig:
    """The seed's completion-extraction config for one `boxed` setting (boxed first, no anchor-less guess)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        norm = NormalizationConfig(
            nits=False, malformed_operators=False, basic_latex=True, equations=True, boxed=boxed, units=True
        )
    return LatexExtractionConfig(normalization_config=norm, boxed_match_priority=0, try_extract_without_anchor=False)


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
        return [
            parse(text, extraction_config=[c], extraction_mode="first_match", parsing_timeout=None) for c in configs
        ]
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
