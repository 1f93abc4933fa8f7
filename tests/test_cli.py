"""A researcher's first hour: printed paths paste back, user errors are one line, the demo's console is short."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from openrs.cli import holds_only_hydra_files, quote_path_overrides

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_sweep_point_dirs_are_quoted_for_hydra():
    point = "outputs/multirun/smoke/2026-12-02/10-00-00/grpo.max_steps=30,lr=0.001"
    assert quote_path_overrides(["x", f"run={point}", f"resume={point}"]) == [
        "x",
        f"run='{point}'",
        f"resume='{point}'",
    ]
    plain = ["run=outputs/rs3/2026-12-02/10-00-00", "lr=1e-6,5e-6", "run='already/quoted=1'"]
    assert quote_path_overrides(plain) == plain  # plain paths, sweeps and quoted values are left alone
    assert quote_path_overrides(["resume=/tmp/it's=here"]) == ["resume='/tmp/it\\'s=here'"]


def test_only_hydra_files_means_nothing_of_the_run(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "train.log").write_text("")
    assert holds_only_hydra_files(tmp_path)
    (tmp_path / "provenance.json").write_text("{}")
    assert not holds_only_hydra_files(tmp_path)


@pytest.mark.slow
def test_a_sweep_points_dir_as_printed_pastes_back_into_resume(tmp_path):
    sweep = tmp_path / "sweep"
    out = run(
        "-m",
        "openrs.train",
        "--multirun",
        "experiment=smoke",
        "grpo.max_steps=2",
        "grpo.save_steps=2",
        "lr=1e-3,3e-3",
        f"hydra.sweep.dir={sweep}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    point = sweep / "grpo.max_steps=2,grpo.save_steps=2,lr=0.001"
    assert f"run dir {point}" in out.stdout  # printed by the run's header, as the user sees it
    again = run(
        "-m",
        "openrs.train",
        "experiment=smoke",
        "grpo.max_steps=2",
        "grpo.save_steps=2",
        f"resume={point}",
        f"hydra.run.dir={tmp_path / 'again'}",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "is complete (step 2 of 2)" in again.stdout


USER_ERRORS = [
    (["resume=/tmp/openrs-no-such-run"], 2, "resume=/tmp/openrs-no-such-run: not a run directory"),
    (["dataset=jsonl"], 2, "dataset.path is required with dataset.source=local"),
    (["dataset=jsonl", "dataset.path=/tmp/openrs-no-such.jsonl"], 2, "dataset.path: no such file"),
    (["hardware.cpu_threads=0"], 2, "hardware.cpu_threads=0: must be >= 1"),
    (["model.dtype=bfloat16"], 2, "model.dtype=bfloat16 with hardware.bf16=false"),
    (["grpo.num_generations=3"], 2, "does not split into groups of grpo.num_generations=3"),
    # Out-of-range values fail while the config is built, before any model loads or file is written.
    (["lr=-1"], 2, "optimizer.lr (the lr sweep axis feeds it)=-1.0: must be > 0"),
    (["max_len=0"], 2, "(the max_len sweep axis feeds it)=0: must be >= 1"),
    (["grpo.num_generations=1"], 2, "grpo.num_generations=1: must be >= 2"),
    (["optimizer.warmup_ratio=1.5"], 2, "optimizer.warmup_ratio=1.5: must be in [0, 1)"),
    (
        ["hardware.vllm_gpu_memory_utilization=2"],
        2,
        "hardware.vllm_gpu_memory_utilization=2.0: must be in (0, 1]",
    ),
    (["reward=cosine", "reward.terms.cosine.params.max_len=-1"], 2, "reward.terms.cosine.params: "),
    (["reward.verifier.timeout_s=0"], 2, "reward.verifier.timeout_s must be a positive number"),
    # The mission's first command on a machine without GPUs (a login node, a laptop): the ways forward, not a stack.
    (
        ["experiment=rs2", "reward=cosine"],
        2,
        "0 are visible here (CUDA_VISIBLE_DEVICES=''). To run it on a GPU node, submit it: add -m "
        "hydra/launcher=submitit_slurm (README: Run on SLURM); to try openrs on this machine: make demo, or hardware=cpu",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("overrides", "code", "needle"), USER_ERRORS, ids=[" ".join(o) for o, _, _ in USER_ERRORS])
def test_user_error_is_one_line_without_traceback_and_leaves_no_run_dir(tmp_path, overrides, code, needle):
    run_dir = tmp_path / "run"
    # No GPU visible, as on a login node (CI has none; on a GPU box the rs2 case would start training).
    out = run(
        "-m", "openrs.train", *overrides, f"hydra.run.dir={run_dir}", env={"CUDA_VISIBLE_DEVICES": ""}, timeout=300
    )
    assert out.returncode == code, (out.returncode, out.stderr[-3000:])
    errors = [line for line in out.stderr.splitlines() if line.startswith("openrs.train: error:")]
    assert len(errors) == 1 and needle in errors[0], out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "HYDRA_FULL_ERROR" not in out.stderr, out.stderr[-3000:]
    assert not run_dir.exists(), f"left behind: {sorted(p.name for p in run_dir.iterdir())}"
    assert "Loading weights" not in out.stdout + out.stderr and "warm start:" not in out.stdout  # no model loaded


@pytest.mark.slow
def test_offline_hub_model_is_one_line(tmp_path):
    """The paper's model with no network: a clear line naming the model and the local way, quickly."""
    out = run(
        "-m",
        "openrs.train",
        "experiment=rs2",
        "hardware=cpu",
        "model.dtype=float32",
        "hardware.per_device_train_batch_size=6",
        "dataset=mini_arith",  # local data: the model is what fails
        f"hydra.run.dir={tmp_path / 'run'}",
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
        timeout=300,
    )
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("openrs.train: error:")]
    assert len(errors) == 1 and "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" in errors[0], out.stderr[-3000:]
    assert "model.name_or_path" in errors[0] and "Traceback" not in out.stderr


@pytest.mark.slow
def test_demo_console_is_short_before_step_one_and_free_of_warnings(tmp_path, mini_warm_start):
    out = run("-m", "openrs.train", "grpo.max_steps=2", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = (out.stdout + out.stderr).splitlines()
    first_step = next(i for i, line in enumerate(out.stdout.splitlines()) if line.startswith("step 1/"))
    before = out.stdout.splitlines()[:first_step] + out.stderr.splitlines()
    assert len(before) <= 15, "\n".join(before)
    assert not any("Warning" in line for line in lines), "\n".join(line for line in lines if "Warning" in line)
    assert out.stdout.startswith("openrs: experiment mini | model openrs/mini-qwen2")
    tail = out.stdout.strip().splitlines()[-5:]  # the result, the two evaluations' log lines, the sentence
    assert any(line.startswith("openrs: done, 2 steps") for line in tail), tail
    assert tail[-1].startswith("held-out accuracy "), tail
