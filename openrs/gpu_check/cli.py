"""``python -m openrs.gpu_check``: run the check (or its dry run), decide pass or fail, write the report.

Exit status: 0 when every check passes (or there is no CUDA device: one line, nothing checked), 1 when any fails;
the failed checks are named in the table and the report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SKIP_LINE = "gpu-check: no CUDA device; nothing to check (use --dry-run to test the script itself)"
BUDGET_S = 480.0  # the whole check, model build included, on one modern GPU


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m openrs.gpu_check",
        description="The GPU acceptance check: a few rs3-shaped GRPO steps on one GPU, checks, and a report "
        "(benchmarks/RESULTS_gpu.md) with a projection of rs3 on 4x A40.",
    )
    p.add_argument("--dry-run", action="store_true", help="everything but the GPU steps; runs on CPU in seconds")
    p.add_argument(
        "--report",
        type=Path,
        help="where to write the report (default: benchmarks/RESULTS_gpu.md of the checkout; a temporary file with --dry-run)",
    )
    p.add_argument("--run-dir", type=Path, help="run directory (default: a temporary one, removed after a pass)")
    p.add_argument("--keep", action="store_true", help="keep the run directory after a pass")
    p.add_argument("--budget-s", type=float, default=BUDGET_S, help="fail past this many seconds in all (0: no limit)")
    p.add_argument("--gpu-tflops", type=float, help="this GPU's dense bf16 TFLOPS, where the built-in table lacks it")
    p.add_argument("--gpu-bandwidth-gbs", type=float, help="this GPU's memory bandwidth in GB/s, with --gpu-tflops")
    p.add_argument(
        "--gpu-memory-gb",
        type=float,
        help="plan for a GPU of this many GB (default: the GPU found; with --dry-run, an A40's 48)",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides after the check's own, e.g. max_len=2048")
    return p.parse_args(argv)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        from openrs.gpu_check.dry import dry_run

        return dry_run(args)
    if not cuda_available():
        print(SKIP_LINE)
        return 0
    from openrs.gpu_check.run import gpu_run

    return gpu_run(args)
