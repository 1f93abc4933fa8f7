"""A two-point local sweep run at once (submitit_local) against the same two runs one after the other.

    .venv/bin/python benchmarks/bench_local_sweep.py              # 2 pairs, 60 smoke steps a run
    .venv/bin/python benchmarks/bench_local_sweep.py --pairs 3 --steps 100

Concurrent jobs on one machine used to spin against each other (each torch took every core: a two-point sweep
ran 6x slower than one run alone). The local launcher now tells each job how many share the machine, and each
sizes its threads and verifier workers to its share (openrs.procpool.procs.cpu_share). This times the whole command
from outside, A B A B, and prints wall seconds and the median of the jobs' median step times (TRL's
``step_time`` in metrics.jsonl); a ratio near 1 means the concurrent sweep costs no more than running the
points in turn.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LRS = ("1e-3", "3e-3")


def train(*args: str) -> None:
    cmd = [sys.executable, "-m", "openrs.train", *args]
    subprocess.run(
        cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy()
    )


def median_step_s(root: Path) -> float:
    """Median over the runs under ``root`` of each run's median ``step_time``."""
    per_run = []
    for metrics in root.rglob("metrics.jsonl"):
        times = [r["step_time"] for r in map(json.loads, metrics.read_text().splitlines()) if "step_time" in r]
        if times:
            per_run.append(statistics.median(times))
    return statistics.median(per_run) if per_run else float("nan")


def sweep(root: Path, steps: int) -> None:
    train(
        "--multirun",
        "experiment=smoke",
        f"lr={','.join(LRS)}",
        f"grpo.max_steps={steps}",
        "hydra/launcher=submitit_local",
        f"hydra.sweep.dir={root}",
    )


def sequential(root: Path, steps: int) -> None:
    for lr in LRS:
        train("experiment=smoke", f"lr={lr}", f"grpo.max_steps={steps}", f"hydra.run.dir={root / f'lr={lr}'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="A B pairs timed")
    parser.add_argument("--steps", type=int, default=60, help="GRPO steps a run (experiment=smoke)")
    args = parser.parse_args()
    modes = {
        "sweep, submitit_local (2 jobs at once)": sweep,
        "the same 2 runs one after the other": sequential,
    }
    walls: dict[str, list[float]] = {m: [] for m in modes}
    steps: dict[str, list[float]] = {m: [] for m in modes}
    load = os.getloadavg()[0]
    for _ in range(args.pairs):
        for name, run in modes.items():
            root = Path(tempfile.mkdtemp(prefix="openrs-bench-sweep-"))
            try:
                start = time.perf_counter()
                run(root, args.steps)
                walls[name].append(time.perf_counter() - start)
                steps[name].append(median_step_s(root))
            finally:
                shutil.rmtree(root, ignore_errors=True)
    print(
        f"\n{len(LRS)} smoke runs of {args.steps} steps, {os.cpu_count()} cores, load {load:.1f} at the start; "
        f"{args.pairs} pairs, A B A B"
    )
    print("| mode | wall s (median) | wall s (min-max) | step s (median of jobs) |")
    print("| --- | --- | --- | --- |")
    for name in modes:
        w = walls[name]
        print(
            f"| {name} | {statistics.median(w):.1f} | {min(w):.1f}-{max(w):.1f} | {statistics.median(steps[name]):.3f} |"
        )
    a, b = (walls[m] for m in modes)
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    print(
        f"\nwall ratio sweep / sequential, pair by pair: {', '.join(f'{r:.2f}' for r in ratios)} "
        f"(median {statistics.median(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
