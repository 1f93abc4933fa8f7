"""The GPU acceptance check: does a GPU run of openrs work on this machine, and what would rs3 cost on 4x A40?

    python -m openrs.gpu_check                 # or: make gpu-check; writes benchmarks/RESULTS_gpu.md
    python -m openrs.gpu_check --dry-run       # everything but the GPU steps, on CPU in seconds (CI runs it)
    python -m openrs.gpu_check max_len=2048    # any Hydra override, after the check's own

It trains ``experiment=gpu_check`` (conf/experiment/gpu_check.yaml: rs3's shape for 4 steps on a random-init
model of DeepSeek-R1-Distill-Qwen-1.5B's architecture, generated data, nothing downloaded) through
``openrs.runtime.launch.launch``, the path ``python -m openrs.train`` takes, with vLLM where it is installed and DeepSpeed
ZeRO-2 where DeepSpeed is. It then checks that the run reached its steps, that every logged loss and every weight
stayed finite and that the weights moved, and reports per-step seconds (generation / reward / loss forward-backward),
completion tokens/s, peak GPU memory and a projection of rs3's 500 steps on the paper's 4x A40 node. Without a CUDA
device it prints one line and exits 0. benchmarks/README.md says how to run it on an offline GPU machine.

Modules, one job each: :mod:`~openrs.gpu_check.cli` (the command: run, decide, report), :mod:`~.plan` (the config
and the machine), :mod:`~.inputs` (shapes, work ratios and model facts both modes use), :mod:`~.measure` (figures
read back from the run), :mod:`~.projection` (the projection's arithmetic and GPU figures), :mod:`~.report`
(console table and Markdown).
"""

from openrs.gpu_check.cli import main

__all__ = ["main"]
