"""The seed's scoring rule: parity with lighteval on hand-written cases, per-benchmark API, threads, timeouts."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from openrs.evaluate import extract_answer, judge_answer, score
from openrs.evaluate.benchmarks import BenchmarkSpec
from openrs.evaluate.pool import ScoringPool
from openrs.evaluate.scoring import delimit_bare_latex, judge

# Hand-written cases frozen with lighteval's verdicts. `lighteval` was produced by
# tests/fixtures/eval/lighteval_oracle.py (lighteval 0.13.0 + latex2sympy2_extended 1.0.6 in a separate venv,
# metrics configured exactly like the seed's latex_gold_metric / expr_gold_metric). `expected` is this
# project's verdict; where the two differ, `divergence` says why. Regenerate both columns, never hand-edit.
PARITY_FILE = Path(__file__).parent / "fixtures" / "eval" / "scoring_parity.jsonl"
PARITY = [json.loads(line) for line in PARITY_FILE.read_text().splitlines() if line.strip()]


def fa(answer: str) -> str:
    """A completion ending the way the seed's prompt asks."""
    return f"Therefore, the final answer is: $\\boxed{{{answer}}}$. I hope it is correct"


@pytest.mark.parametrize("case", PARITY, ids=[c["note"] for c in PARITY])
def test_parity_case(case: dict) -> None:
    verdict = judge(case["prediction"], case["gold"], case["gold_kind"])
    assert verdict.correct is case["expected"], verdict


def test_parity_fixture_agrees_with_lighteval_except_documented() -> None:
    divergent = [c for c in PARITY if c["expected"] != c["lighteval"]]
    assert all("divergence" in c for c in divergent)
    assert not any("divergence" in c for c in PARITY if c["expected"] == c["lighteval"])
    # Two math-verify rounding cases and three delimiter-less golds; anything more is a regression.
    assert len(divergent) == 5
    assert len(PARITY) >= 80
    assert {c["gold_kind"] for c in PARITY} == {"latex", "expr"}
    assert sum(c["lighteval"] for c in PARITY) >= 25 and sum(not c["lighteval"] for c in PARITY) >= 25


@pytest.mark.parametrize(
    ("benchmark", "prediction", "gold", "correct"),
    [
        ("aime24", fa("025"), "25", True),
        ("aime24", fa("204"), "25", False),
        ("amc23", fa("\\frac{54}{2}"), "27", True),
        ("math500", fa("\\dfrac{1}{2}"), "Hence the probability is $\\boxed{\\frac{1}{2}}$.", True),
        ("math500", fa("\\frac{1}{3}"), "Hence the probability is $\\boxed{\\frac{1}{2}}$.", False),
        ("minerva", fa("1.6 \\mathrm{~cm}"), "So $s = \\boxed{1.6}$ cm.", True),
        ("olympiadbench", fa("\\frac{n(n+1)}{4}"), "\\frac{1}{4} n(n+1)", True),
        ("olympiadbench", fa("\\frac{1}{4}"), "\\frac{1}{4} n(n+1)", False),
        ("olympiadbench", fa("44"), "44^{\\circ}", True),
    ],
)
def test_score_per_benchmark(benchmark: str, prediction: str, gold: str, correct: bool) -> None:
    assert score(benchmark, prediction, gold) is correct


def test_gold_kind_matters() -> None:
    # A solution text as gold: LaTeX extraction finds the boxed answer, expression extraction the last number.
    solution = "Adding gives $\\boxed{12}$ apples, and with the 3 extra ones 15 in total"
    assert score("math500", fa("12"), solution)
    assert not score("aime24", fa("12"), solution)


def test_custom_spec_and_unknown_benchmark() -> None:
    spec = BenchmarkSpec("tiny", None, "train", ("problem",), ("answer",), "expr")
    assert score(spec, fa("7"), "7")
    with pytest.raises(KeyError, match="unknown benchmark 'aime25'"):
        score("aime25", fa("7"), "7")
    with pytest.raises(ValueError, match="gold_kind"):
        BenchmarkSpec("bad", None, "train", ("problem",), ("answer",), "string")  # type: ignore[arg-type]


def test_delimit_bare_latex() -> None:
    assert delimit_bare_latex("\\frac{1}{4} n(n+1)") == "$\\frac{1}{4} n(n+1)$"
    for already in ("$2$", "so $\\boxed{3}$", "\\(x\\)", "\\[x\\]", "\\boxed{5}", ""):
        assert delimit_bare_latex(already) == already


def test_extracted_answer_for_logs() -> None:
    assert extract_answer("<think>maybe \\boxed{3}</think> " + fa("\\frac{1}{2}")) == "1/2"
    assert extract_answer("no idea") is None
    verdict = judge_answer("aime24", fa("25"), "25")
    assert (verdict.correct, verdict.extracted, verdict.gold_extracted) == (True, "25", "25")


def test_scoring_off_the_main_thread() -> None:
    cases = PARITY[:24]
    with ThreadPoolExecutor(max_workers=2) as pool:
        verdicts = list(pool.map(lambda c: judge(c["prediction"], c["gold"], c["gold_kind"]).correct, cases))
    assert verdicts == [c["expected"] for c in cases]
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(score("amc23", fa("27"), "27")))
    thread.start()
    thread.join()
    assert seen == [True]


@pytest.mark.slow
def test_pool_times_out_pathological_answers_and_keeps_order() -> None:
    jobs = [
        (fa("204"), "204", "expr"),
        (fa("9^{9^{9^{9}}}"), "27", "expr"),  # sympy never finishes this without a time limit
        (fa("203"), "204", "expr"),
        (fa("\\frac{1}{2}"), "$0.5$", "latex"),
    ]
    with ScoringPool(workers=2, timeout_s=2.0) as pool:
        verdicts = pool.judge_many(jobs)
        again = pool.judge_many(jobs[:1])  # the pool still works after replacing the stuck worker
    assert [v.correct for v in verdicts] == [True, False, False, True]
    assert [v.timed_out for v in verdicts] == [False, True, False, False]
    assert again[0].correct and again[0].extracted == "204"
