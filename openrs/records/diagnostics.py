"""Text diagnostics of completions: the paper's failure modes as numbers.

Pure functions over strings and token counts, no trainer involved:
language drift (letters from scripts other than Latin/Greek), a well-formed ``</think>``, a ``\\boxed{}``
answer, and the share of completions clipped at the token budget. :func:`batch_diagnostics` turns one batch
into the shares that :mod:`openrs.records.tb` logs as ``diagnostics/*``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

# Scripts a math answer in English may use: Latin (incl. accents), Greek (pi, theta) and the mathematical
# letter blocks (double-struck R, script l). Any other alphabetic character counts as drift.
_ALLOWED_PREFIXES = (
    "LATIN",
    "GREEK",
    "MATHEMATICAL",
    "DOUBLE-STRUCK",
    "SCRIPT",
    "BLACK-LETTER",
    "PLANCK",
    "ANGSTROM",
    "ALEF",
    "MICRO",
    "MODIFIER LETTER",
    "SUPERSCRIPT",
    "SUBSCRIPT",
    "FEMININE ORDINAL",
    "MASCULINE ORDINAL",
)


def is_foreign_letter(ch: str) -> bool:
    """True for an alphabetic character outside Latin, Greek and the math letter blocks (CJK, Cyrillic, ...)."""
    if not ch.isalpha() or ch.isascii():
        return False
    name = unicodedata.name(ch, "")
    return not name.startswith(_ALLOWED_PREFIXES)


def foreign_letter_count(text: str) -> int:
    """How many letters of ``text`` belong to a script other than Latin/Greek."""
    return sum(is_foreign_letter(ch) for ch in text)


def is_drifted(text: str, min_letters: int = 2) -> bool:
    """A completion drifted when it holds at least ``min_letters`` letters of another script."""
    return foreign_letter_count(text) >= max(1, min_letters)


def think_well_formed(text: str) -> bool:
    """Exactly one ``</think>``; an opening ``<think>`` (optional: templates often put it in the prompt) comes first."""
    if text.count("</think>") != 1 or text.count("<think>") > 1:
        return False
    opening = text.find("<think>")
    return opening < text.find("</think>")


def boxed_answers(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` with balanced braces, in order (unclosed ones are left out)."""
    out: list[str] = []
    start = text.find("\\boxed{")
    while start != -1:
        i, depth = start + len("\\boxed{"), 1
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[start + len("\\boxed{") : i - 1])
        start = text.find("\\boxed{", i if depth == 0 else start + 1)
    return out


def has_boxed_answer(text: str) -> bool:
    """True when some ``\\boxed{}`` holds a non-empty answer."""
    return any(a.strip() for a in boxed_answers(text))


def share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def batch_diagnostics(texts: Sequence[str], drift_min_letters: int = 2) -> dict[str, float]:
    """Shares over one batch of completions, keyed by the names logged under ``diagnostics/``."""
    out = {
        "lang_drift_share": share([is_drifted(t, drift_min_letters) for t in texts]),
        "think_closed_share": share([think_well_formed(t) for t in texts]),
        "boxed_share": share([has_boxed_answer(t) for t in texts]),
    }
    return out  # the clipped share is TRL's own completions/clipped_ratio
