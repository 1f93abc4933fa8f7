"""Scoring throughput on evaluation-sized completions: in-process vs the time-limited worker pool.

    .venv/bin/python benchmarks/bench_eval_scoring.py                # ~1 minute on 2 cores
    .venv/bin/python benchmarks/bench_eval_scoring.py --chars 60000 --n 100 --workers 2

Completions are built from the real benchmarks in /work/shared/data/benchmarks (skipped when absent, with
generated arithmetic instead): `--chars` characters of other problems' solutions with their boxes removed, then
the seed's final-answer line, right for half of them. Prints seconds per completion for each path and fails if
the two paths disagree on any verdict.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from openrs.evaluate.benchmarks import BENCHMARKS, load_benchmark
from openrs.evaluate.pool import Job, ScoringPool
from openrs.evaluate.scoring import judge

SHARED = Path("/work/shared/data/benchmarks")


def load_rows() -> list[tuple[str, str, str, str]]:
    """(benchmark, gold, short answer, solution text) rows."""
    rows = []
    for name, spec in BENCHMARKS.items():
        path = SHARED / f"{name}.jsonl"
        if not path.is_file():
            continue
        for p in load_benchmark(name, path):
            answer = str(p.extra.get("answer", p.gold))
            rows.append((spec.gold_kind, p.gold, answer, str(p.extra.get("solution", p.gold))))
    if rows:
        return rows
    rng = random.Random(0)
    for _ in range(200):
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        text = f"We multiply ${a}$ by ${b}$ digit by digit and add the partial products. " * 5
        rows.append(("expr", str(a * b), str(a * b), text))
    return rows


def make_jobs(n: int, chars: int, seed: int = 0) -> list[Job]:
    rows = load_rows()
    rng = random.Random(seed)
    jobs: list[Job] = []
    for _ in range(n):
        kind, gold, answer, _ = rng.choice(rows)
        body, size = [], 0
        while size < chars:
            piece = rng.choice(rows)[3].replace("\\boxed", "")
            body.append(piece)
            size += len(piece)
        final = answer if rng.random() < 0.5 else rng.choice(rows)[2]
        text = (
            "\n".join(body)[:chars]
            + f"\n</think>\nTherefore, the final answer is: $\\boxed{{{final}}}$. I hope it is correct"
        )
        jobs.append((text, gold, kind))  # type: ignore[arg-type]
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="completions")
    parser.add_argument("--chars", type=int, default=20000, help="characters of reasoning per completion")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per answer in the pool")
    args = parser.parse_args()

    jobs = make_jobs(args.n, args.chars)
    start = time.perf_counter()
    inline = [judge(*job) for job in jobs]
    t_inline = time.perf_counter() - start

    with ScoringPool(workers=args.workers, timeout_s=args.timeout) as pool:
        pool.judge_many(jobs[:1])  # start the workers outside the timing
        start = time.perf_counter()
        pooled = pool.judge_many(jobs)
        t_pool = time.perf_counter() - start

    mismatches = [i for i, (a, b) in enumerate(zip(inline, pooled, strict=True)) if a.correct != b.correct]
    print(f"{args.n} completions of ~{args.chars} chars, {sum(v.correct for v in inline)} correct")
    print(f"in-process : {t_inline / args.n * 1000:8.1f} ms/completion")
    print(
        f"pool (x{args.workers})  : {t_pool / args.n * 1000:8.1f} ms/completion, {sum(v.timed_out for v in pooled)} timed out"
    )
    if mismatches:
        raise SystemExit(f"verdicts differ between paths at {mismatches[:10]}")


if __name__ == "__main__":
    main()
