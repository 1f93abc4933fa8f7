"""Score a model directory on the miniature task's held-out problems, and compare two models on them.

Greedy decoding of the first ``n`` held-out problems (``mini_heldout``, in the training prompt format) through
the evaluation runner's transformers backend. By default each completion is scored with the training
reward's own ``accuracy`` term (math-verify behind the shared, time-bounded verifier), so "held-out accuracy"
is the quantity GRPO optimizes; ``scoring="judge"`` uses the evaluation CLI's lighteval rule instead. The
outcomes are per-problem lists of 0/1, in problem order, so two models scored on the same problems can be
compared pairwise (:func:`openrs.evaluate.paired.paired_difference`); :func:`start_vs_final` does that for a
finished run (``eval_after`` in its config) and writes its ``RunDir.after_training``.

The CLI path gives the same problems and prompts:
``python -m openrs.evaluate model=<dir> benchmarks=[mini_heldout] temperature=0 max_new_tokens=32 limit=200``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from openrs.evaluate.backends import SamplingSettings, TransformersBackend
from openrs.evaluate.benchmarks import get_spec, load_benchmark
from openrs.evaluate.pool import Job
from openrs.evaluate.runner import BenchmarkResult, EvalSettings, evaluate_benchmark
from openrs.evaluate.scoring import Verdict
from openrs.records.run_dir import RunDir

BENCHMARK = "mini_heldout"
Scoring = Literal["reward", "judge"]


class RewardScorer:
    """Scores evaluation jobs with the ``accuracy`` reward term (the shared verifier; one worker process)."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        from openrs.rewards import SharedVerifier, get_reward

        self.verifier = SharedVerifier(workers=1, timeout_s=timeout_s)
        self.term = get_reward("accuracy", verifier=self.verifier)

    def __call__(self, jobs: Sequence[Job]) -> list[Verdict]:
        texts, golds = [j[0] for j in jobs], [j[1] for j in jobs]
        scores = self.term(completions=texts, solution=golds)
        return [Verdict(correct=s == 1.0, extracted=None, gold_extracted=None) for s in scores]

    def close(self) -> None:
        self.verifier.close()


@dataclass
class HeldOutResult:
    """Per-problem outcomes of one model, plus what was generated and how long it took."""

    model: str
    outcomes: list[list[bool]]  # one list per problem (one entry per sample; greedy: one)
    completions: list[str]
    generate_and_score_s: float

    @property
    def accuracy(self) -> float:
        return float(np.mean([np.mean(o) for o in self.outcomes]))

    @property
    def format_share(self) -> float:
        """Share of completions that close the think block exactly once (the format reward's test)."""
        return float(np.mean([t.count("\n</think>\n") == 1 for t in self.completions]))


def evaluate_heldout(
    model_dir: str | Path,
    n: int = 200,
    max_new_tokens: int = 32,
    batch_size: int = 100,
    scoring: Scoring = "reward",
    benchmark: str = BENCHMARK,
) -> HeldOutResult:
    """Greedy accuracy of ``model_dir`` on the first ``n`` problems of ``benchmark``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = get_spec(benchmark)
    problems = load_benchmark(spec, limit=n)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    backend = TransformersBackend(model, AutoTokenizer.from_pretrained(str(model_dir)), batch_size)
    settings = EvalSettings(sampling=SamplingSettings(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    start = time.perf_counter()
    if scoring == "reward":
        scorer = RewardScorer()
        try:
            result: BenchmarkResult = evaluate_benchmark(backend, spec, problems, settings, scorer)
        finally:
            scorer.close()
    elif scoring == "judge":
        from openrs.evaluate.pool import ScoringPool

        pool = ScoringPool(workers=1, timeout_s=10.0)
        try:
            result = evaluate_benchmark(backend, spec, problems, settings, pool.judge_many)
        finally:
            pool.close()
    else:
        raise ValueError(f"scoring must be 'reward' or 'judge', got {scoring!r}")
    seconds = time.perf_counter() - start
    backend.close()
    return HeldOutResult(str(model_dir), result.outcomes, [r["completion"] for r in result.records], seconds)


def start_vs_final(
    start_dir: str | Path,
    final_dir: str | Path,
    run_dir: Path,
    benchmark: str,
    limit: int,
    max_new_tokens: int,
) -> dict:
    """The starting and the final model on the same problems, compared pairwise; written to the run's eval dir."""
    from openrs.evaluate.paired import format_sentence, paired_difference
    from openrs.records.atomic import write_json_atomic

    start = evaluate_heldout(start_dir, n=limit, max_new_tokens=max_new_tokens, benchmark=benchmark)
    final = evaluate_heldout(final_dir, n=limit, max_new_tokens=max_new_tokens, benchmark=benchmark)
    paired = paired_difference(start.outcomes, final.outcomes)
    label = "held-out accuracy" if benchmark == BENCHMARK else f"{benchmark} accuracy"
    record = {
        "benchmark": benchmark,
        "limit": limit,
        "max_new_tokens": max_new_tokens,
        "decoding": "greedy",
        "start": {"model": str(start_dir), "accuracy": start.accuracy, "outcomes": start.outcomes},
        "final": {"model": str(final_dir), "accuracy": final.accuracy, "outcomes": final.outcomes},
        "paired": paired.to_dict(),
        "sentence": format_sentence(paired, what=label),
    }
    path = RunDir(run_dir).after_training
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)
    return record
