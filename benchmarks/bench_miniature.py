"""Open RS in miniature, measured: does GRPO with a correctness reward lift held-out accuracy on 2 CPU cores?

    .venv/bin/python benchmarks/bench_miniature.py                # default path: SFT + one GRPO run, ~3.5 min
    .venv/bin/python benchmarks/bench_miniature.py --seeds 42 43 --rewards accuracy format    # ~7.5 min

Through openrs's real path, each stage in its own process: ``python -m openrs.warmstart experiment=mini``
builds the warm start (``model.warm_start`` of ``conf/model/mini.yaml``: SFT on noisy-teacher traces) into a
fresh cache (``--cache`` reuses one), which is scored greedily on the first ``--n-eval`` held-out problems;
then each (seed, reward) arm runs ``python -m openrs.train experiment=mini seed=<s> reward=<r>`` into a run
dir (it finds the cached warm start through the same recipe hash), and its ``final/`` model is scored on the
same problems. ``reward=format`` is the control: it never sees correctness, so it should not lift accuracy.

Prints one row per arm: warm-start and final accuracy, the paired difference with a 95% bootstrap interval
over problems, the final format share, wall times (SFT, GRPO subprocess, evaluations) and peak memory: of each
stage's process tree (the subprocess and its workers) and of the whole tree (this process included), from RSS
sampled every 0.2 s.

``--threads N`` sets torch's intra-op threads here and, through ``OMP_NUM_THREADS``, in the stage processes.
On an idle 2-core host torch's default (2) is fastest (GRPO 0.37 s a step); on a shared, busy host two
threads per process spin against each other and ran GRPO 5-10x slower than ``--threads 1`` (3-12 s vs
0.7 s a step at load average ~4). The thread count changes float reductions and hence the SFT result:
the same recipe gave 44.5% held-out with 2 threads and 14.5% with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


class TreeMemory:
    """Samples, in a background thread, the summed RSS of this process's descendants and of the whole tree."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s, self._stop = interval_s, threading.Event()
        self.peak_children = self.peak_tree = self.peak_tree_overall = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> tuple[int, int]:
        me = psutil.Process()
        children = 0
        for proc in me.children(recursive=True):
            try:
                children += proc.memory_info().rss
            except psutil.Error:  # the process ended between listing and reading
                pass
        return children, children + me.memory_info().rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            children, tree = self._sample()
            self.peak_children, self.peak_tree = max(self.peak_children, children), max(self.peak_tree, tree)
            self.peak_tree_overall = max(self.peak_tree_overall, tree)

    def reset(self) -> tuple[float, float]:
        """Peaks (GB) of the subprocesses and of the whole tree since the last reset; starts a new window."""
        peaks = (self.peak_children / 2**30, max(self.peak_tree, self._sample()[1]) / 2**30)
        self.peak_children = self.peak_tree = 0
        return peaks

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def fmt_load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def overrides(seed: int, reward: str, grpo_steps: int | None, extra: list[str]) -> list[str]:
    out = ["experiment=mini", f"seed={seed}", f"reward={reward}"]
    if grpo_steps is not None:
        out.append(f"grpo.max_steps={grpo_steps}")
    return out + extra


def run_module(module: str, args: list[str], log_path: Path) -> float:
    """``python -m <module> <args>`` with its output in ``log_path``; returns its wall time (fails loudly)."""
    start = time.perf_counter()
    with log_path.open("w") as log:
        done = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise SystemExit(f"{module} failed ({done.returncode}); log: {log_path}\n{tail}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--seeds", type=int, nargs="+", default=[42], help="GRPO seeds (one run each)")
    add("--rewards", nargs="+", default=["accuracy"], help="reward options (accuracy, format, ...)")
    add("--n-eval", type=int, default=200, help="held-out problems scored (of 500)")
    add("--grpo-steps", type=int, default=None, help="override grpo.max_steps (preset: 200)")
    add("--cache", type=Path, default=None, help="artefact cache to reuse (default: a fresh one)")
    add("--out", type=Path, default=None, help="keep run dirs and results here (default: temp)")
    add(
        "--threads",
        type=int,
        default=0,
        help="torch threads in every stage (OMP_NUM_THREADS); 0 = torch's default; 1 on a busy host",
    )
    add("overrides", nargs="*", help="Hydra overrides for every stage (model.warm_start.steps=300)")
    opts = parser.parse_args()

    scratch = tempfile.TemporaryDirectory(prefix="bench-miniature-")
    out = opts.out or Path(scratch.name)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["OPENRS_CACHE"] = str(opts.cache or out / "cache")  # the training subprocesses inherit it
    if opts.threads:
        os.environ["OMP_NUM_THREADS"] = str(opts.threads)
        import torch

        torch.set_num_threads(opts.threads)
    load_before = os.getloadavg()

    from openrs.config import compose, to_run_config
    from openrs.evaluate.heldout import evaluate_heldout
    from openrs.evaluate.paired import paired_difference
    from openrs.models.cache import WARM_START_RECIPE_FILE
    from openrs.training.warmstart import build_warm_start

    rows, timings = [], {}
    with TreeMemory() as mem:
        # Warm start: built by its own process from the run config's model section (as training would).
        first = overrides(opts.seeds[0], opts.rewards[0], opts.grpo_steps, opts.overrides)
        timings["sft_wall_s"] = run_module("openrs.training.warmstart", first, out / "warmstart.log")
        timings["sft_peak_gb"] = mem.reset()[0]
        cfg = to_run_config(compose(first))
        warm_dir = build_warm_start(cfg.model)  # cached now: only finds the dir
        timings["sft_train_s"] = json.loads((warm_dir / WARM_START_RECIPE_FILE).read_text())["build"]["train_seconds"]
        base = evaluate_heldout(warm_dir, n=opts.n_eval, max_new_tokens=cfg.grpo.max_completion_length)
        timings["eval_warm_s"] = base.generate_and_score_s
        print(
            f"warm start {warm_dir}: {timings['sft_wall_s']:.0f} s "
            f"(SFT loop {timings['sft_train_s']:.0f} s),"
            f" held-out {base.accuracy:.1%}",
            flush=True,
        )

        for reward in opts.rewards:
            for seed in opts.seeds:
                name = f"{reward}-seed{seed}"
                run_dir = out / name
                args = [*overrides(seed, reward, opts.grpo_steps, opts.overrides), f"hydra.run.dir={run_dir}"]
                grpo_s = run_module("openrs.train", args, out / f"{name}.log")
                grpo_peak_gb = mem.reset()[0]
                final = evaluate_heldout(
                    run_dir / "final", n=opts.n_eval, max_new_tokens=cfg.grpo.max_completion_length
                )
                paired = paired_difference(base.outcomes, final.outcomes)
                diff, low, high = paired.difference, paired.ci_low, paired.ci_high
                summary = json.loads((run_dir / "summary.json").read_text())
                rows.append(
                    {
                        "arm": name,
                        "warm": base.accuracy,
                        "final": final.accuracy,
                        "diff": diff,
                        "low": low,
                        "high": high,
                        "format": final.format_share,
                        "grpo_s": grpo_s,
                        "train_runtime_s": summary.get("train_runtime_s"),
                        "steps": summary.get("global_step"),
                        "eval_s": final.generate_and_score_s,
                        "grpo_peak_gb": grpo_peak_gb,
                    }
                )
                print(f"{name}: {base.accuracy:.1%} -> {final.accuracy:.1%} ({grpo_s:.0f} s)", flush=True)

    n = opts.n_eval
    load_after = os.getloadavg()
    timings["loadavg_start"], timings["loadavg_end"] = load_before, load_after
    timings["peak_tree_gb"] = mem.peak_tree_overall / 2**30
    print(
        f"\nheld-out greedy accuracy on {n} problems. Warm start: {timings['sft_wall_s']:.0f} s wall "
        f"(SFT loop {timings['sft_train_s']:.0f} s), peak {timings['sft_peak_gb']:.2f} GB; its evaluation "
        f"{timings['eval_warm_s']:.1f} s. Peak of the whole process tree {timings['peak_tree_gb']:.2f} GB. "
        f"Host load average (1/5/15 min) {fmt_load(load_before)} at the start, {fmt_load(load_after)} "
        "at the end."
    )
    print(
        "| arm | warm start | final | paired diff [95% CI] | final format | GRPO wall s (loop) "
        "| GRPO peak GB | eval s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['arm']} | {r['warm']:.1%} | {r['final']:.1%} | {100 * r['diff']:+.1f} "
            f"[{100 * r['low']:+.1f}, {100 * r['high']:+.1f}] | {r['format']:.1%} | {r['grpo_s']:.0f} "
            f"({r['train_runtime_s'] or 0:.0f}) | "
            f"{r['grpo_peak_gb']:.2f} | {r['eval_s']:.1f} |"
        )
    (out / "results.json").write_text(json.dumps({"timings": timings, "rows": rows, "n_eval": n}, indent=2))
    if opts.out:
        print(f"\nrun dirs, logs and results.json in {out}")


if __name__ == "__main__":
    main()
