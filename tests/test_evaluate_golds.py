"""Gold check on the real benchmarks in ../shared: a boxed gold answer scores correct, a shuffled one does not.

The files are read by path and never copied; each benchmark skips with a reason when its file is absent.
The prediction is the row's final `answer` written the way the seed's prompt asks; the gold is the column the
seed scores against (the full `solution` for math500 and minerva, `answer` otherwise). Every row must pass:
the odd golds listed in SOURCES.md (relay problems, the prose answer, the numpy expression) all agree with
themselves, which is all this check can ask of them (what they accept from a model is pinned in
test_evaluate_scoring.py).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from openrs.evaluate.benchmarks import BENCHMARKS, PAPER_BENCHMARKS, Problem, load_benchmark
from openrs.evaluate.scoring import judge


def boxed(answer: str) -> str:
    return f"Therefore, the final answer is: $\\boxed{{{answer}}}$. I hope it is correct"


def load_or_skip(shared: Path, name: str) -> list[Problem]:
    path = shared / f"{name}.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent from ../shared")
    problems = load_benchmark(name, path)
    assert len(problems) == BENCHMARKS[name].expected_rows
    return problems


def final_answer(problem: Problem) -> str:
    """The row's short answer (math500 and minerva keep it beside the solution that serves as gold)."""
    return str(problem.extra.get("answer", problem.gold))


def same_answer(a: str, b: str) -> bool:
    norm = lambda s: s.replace(" ", "").lstrip("+")  # noqa: E731
    return norm(a) == norm(b)


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_BENCHMARKS)
def test_boxed_gold_scores_correct_and_shuffled_does_not(shared_benchmarks: Path, name: str) -> None:
    problems = load_or_skip(shared_benchmarks, name)
    kind = BENCHMARKS[name].gold_kind
    failures = [p.id for p in problems if not judge(boxed(final_answer(p)), p.gold, kind).correct]
    assert failures == [], f"{name}: gold answers scored wrong for ids {failures}"

    rng = random.Random(1234)
    order = list(range(len(problems)))
    rng.shuffle(order)
    hits = []
    for p, q in zip(problems, [problems[i] for i in order], strict=True):
        if same_answer(final_answer(p), final_answer(q)):
            continue  # repeated answers (several problems answer 3) legitimately score correct
        if judge(boxed(final_answer(q)), p.gold, kind).correct:
            hits.append((p.id, final_answer(q)))
    assert len(hits) <= max(1, len(problems) // 100), f"{name}: shuffled golds scored correct: {hits}"


@pytest.mark.slow
def test_olympiadbench_odd_golds_are_present(shared_benchmarks: Path) -> None:
    """Guards the policy text against a silently changed data file: the odd rows are still there."""
    problems = {p.id: p for p in load_or_skip(shared_benchmarks, "olympiadbench")}
    relays = [p for p in problems.values() if p.extra.get("tnywr")]
    assert len(relays) == 16
    assert problems["1965"].gold.startswith("f(x)=a x+b, where")
