"""Run benchmarks through a backend, score every sample, and write the results.

For each benchmark: render the seed's prompt with the backend's chat template, sample ``n`` completions per
problem, score them with the benchmark's rule (in time-limited worker processes by default), then summarize.
Outputs, under ``eval_dir``:

- ``<benchmark>.jsonl``: one line per sample (problem index and id, sample number, prompt, completion,
  extracted answer, gold, correct, timed_out);
- ``results.json``: settings, per-benchmark pass@1 with its interval and pass@k, and the average.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from openrs.evaluate.backends import Backend, SamplingSettings
from openrs.evaluate.benchmarks import BenchmarkSpec, Problem, chat_messages
from openrs.evaluate.pool import Job, ScoringPool
from openrs.evaluate.report import format_table
from openrs.evaluate.scoring import Verdict, judge
from openrs.evaluate.stats import Summary, summarize, summarize_average
from openrs.records.atomic import write_json_atomic, write_jsonl_atomic

log = logging.getLogger(__name__)

Scorer = Callable[[Sequence[Job]], list[Verdict]]


@dataclass(frozen=True)
class EvalSettings:
    """Sampling plus the statistics and scoring options of one evaluation."""

    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    ks: tuple[int, ...] | None = None  # None: powers of two up to n
    confidence: float = 0.95
    n_resamples: int = 10_000
    bootstrap_seed: int = 0
    score_workers: int = 1
    score_timeout_s: float | None = 10.0  # None: score in this process, without a time limit


@dataclass
class BenchmarkResult:
    name: str
    summary: Summary
    outcomes: list[list[bool]]
    records: list[dict[str, Any]]


@dataclass
class EvalReport:
    benchmarks: dict[str, BenchmarkResult]
    average: Summary | None
    results: dict[str, Any]

    def table(self) -> str:
        return format_table({k: v.summary for k, v in self.benchmarks.items()}, self.average)


def inline_scorer(jobs: Sequence[Job]) -> list[Verdict]:
    """Score in this process (no time limit: for trusted or tiny inputs)."""
    return [judge(*job) for job in jobs]


def evaluate_benchmark(
    backend: Backend, spec: BenchmarkSpec, problems: Sequence[Problem], settings: EvalSettings, scorer: Scorer
) -> BenchmarkResult:
    """Sample, score and summarize one benchmark."""
    n = settings.sampling.n
    prompts = [backend.render(chat_messages(p.problem, spec)) for p in problems]
    start = time.perf_counter()
    completions = backend.generate(prompts, settings.sampling)
    log.info("%s: generated %d x %d in %.1f s", spec.name, len(problems), n, time.perf_counter() - start)
    if len(completions) != len(problems) or any(len(c) != n for c in completions):
        raise RuntimeError(f"{backend.name} returned the wrong number of completions for {spec.name}")
    jobs: list[Job] = [
        (text, p.gold, spec.gold_kind) for p, texts in zip(problems, completions, strict=True) for text in texts
    ]
    verdicts = scorer(jobs)
    records, outcomes = [], []
    for i, (problem, prompt) in enumerate(zip(problems, prompts, strict=True)):
        row = []
        for j in range(n):
            verdict, text = verdicts[i * n + j], completions[i][j]
            row.append(verdict.correct)
            records.append(
                {
                    "benchmark": spec.name,
                    "index": problem.index,
                    "id": problem.id,
                    "sample": j,
                    "prompt": prompt,
                    "completion": text,
                    "extracted": verdict.extracted,
                    "gold": problem.gold,
                    "correct": verdict.correct,
                    "timed_out": verdict.timed_out,
                }
            )
        outcomes.append(row)
    summary = summarize(outcomes, settings.ks, settings.confidence, settings.n_resamples, settings.bootstrap_seed)
    return BenchmarkResult(spec.name, summary, outcomes, records)


def evaluate(
    backend: Backend,
    benchmarks: Sequence[tuple[BenchmarkSpec, Sequence[Problem]]],
    settings: EvalSettings,
    eval_dir: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
    samples: dict[str, int] | None = None,
) -> EvalReport:
    """Evaluate every benchmark; write ``eval_dir`` (when given) benchmark by benchmark, then ``results.json``.

    ``samples`` (protocol=robust): samples per problem by benchmark instead of ``settings.sampling.n``; each such
    benchmark also records the seed protocol's figure, the pass@1 of each problem's first sample.
    """
    out = Path(eval_dir) if eval_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    pool = ScoringPool(settings.score_workers, settings.score_timeout_s) if settings.score_timeout_s else None
    scorer: Scorer = pool.judge_many if pool is not None else inline_scorer
    done: dict[str, BenchmarkResult] = {}
    try:
        for spec, problems in benchmarks:
            n = (samples or {}).get(spec.name, settings.sampling.n)
            own = replace(settings, sampling=replace(settings.sampling, n=n)) if n != settings.sampling.n else settings
            result = evaluate_benchmark(backend, spec, problems, own, scorer)
            done[spec.name] = result
            if out is not None:
                write_jsonl_atomic(out / f"{spec.name}.jsonl", result.records)
    finally:
        if pool is not None:
            pool.close()
    average = None
    if len(done) > 1:
        average = summarize_average(
            [r.outcomes for r in done.values()],
            settings.ks,
            settings.confidence,
            settings.n_resamples,
            settings.bootstrap_seed,
        )
    results = {
        **(metadata or {}),
        "backend": backend.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": asdict(settings),
        "benchmarks": {name: _benchmark_record(r, settings, samples is not None) for name, r in done.items()},
        "average": average.to_dict() if average is not None else None,
    }
    if out is not None:
        write_json_atomic(out / "results.json", results)
    return EvalReport(done, average, results)


def _benchmark_record(result: BenchmarkResult, settings: EvalSettings, robust: bool) -> dict[str, Any]:
    record = result.summary.to_dict()
    if robust:  # what the seed's single-sample protocol would have reported from the same completions
        first = summarize(
            [o[:1] for o in result.outcomes],
            (1,),
            settings.confidence,
            settings.n_resamples,
            settings.bootstrap_seed,
        )
        record["seed_protocol"] = {"pass@1": first.pass1, "ci_low": first.ci_low, "ci_high": first.ci_high}
    return record
