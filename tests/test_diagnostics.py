"""Text diagnostics on crafted completions: language drift, </think>, \\boxed{}, clipped share."""

from __future__ import annotations

import pytest

from openrs.records import diagnostics as d


@pytest.mark.parametrize(
    ("text", "drifted"),
    [
        ("First, 3 + 4 = 7, so the answer is \\boxed{7}.", False),
        ("Café naïve résumé: accents are still Latin script.", False),
        ("The area is πr² with θ = 2π/3, so α + β = ℝ-valued; μ ≈ 1 µs", False),
        ("Let me compute 3+4. 所以答案是 7.", True),  # the paper's drift: Chinese mid-reasoning
        ("Сначала вычислим сумму: 7", True),  # Cyrillic
        ("answer 7 中", False),  # a single stray letter stays below the default threshold
        ("decoding junk \ufffd\ufffd\ufffd 12", False),  # replacement characters are not letters
    ],
)
def test_language_drift_on_crafted_text(text, drifted):
    assert d.is_drifted(text) is drifted


def test_drift_threshold_and_count():
    assert d.foreign_letter_count("abc 中文 xyz Привет") == 8
    assert d.is_drifted("answer 7 中", min_letters=1)
    assert not d.is_drifted("所以答案", min_letters=5)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("reasoning\n</think>\nanswer", True),  # <think> came with the prompt
        ("<think>reasoning</think> answer", True),
        ("reasoning without closing", False),
        ("a</think>b</think>c", False),  # closed twice
        ("</think> then <think> again", False),  # opening after closing
        ("<think>a<think>b</think>", False),
    ],
)
def test_think_well_formed(text, ok):
    assert d.think_well_formed(text) is ok


def test_boxed_answers_balance_braces():
    assert d.boxed_answers("so \\boxed{\\frac{1}{2}} and \\boxed{x}") == ["\\frac{1}{2}", "x"]
    assert d.has_boxed_answer("answer: \\boxed{42}")
    assert not d.has_boxed_answer("answer: \\boxed{ }")  # empty
    assert not d.has_boxed_answer("answer: \\boxed{\\frac{1}{2}")  # never closed
    assert not d.has_boxed_answer("the answer is 42")


def test_batch_diagnostics_shares():
    texts = [
        "think\n</think>\nso \\boxed{7}",
        "思考过程很长\n</think>\n\\boxed{7}",
        "no tags, cut off mid",
        "still no tags",
    ]
    assert d.batch_diagnostics(texts) == {
        "lang_drift_share": 0.25,
        "think_closed_share": 0.5,
        "boxed_share": 0.5,
    }
