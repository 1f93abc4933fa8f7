"""The one entry point launches the right processes: GPU split, vLLM server, torch distributed ranks.

The GPU path (vLLM server + NCCL ranks) is tested through the commands and environments it builds and
a stand-in server; the same rank code runs for real on CPU with gloo: two ranks train and must agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openrs.config import compose, to_run_config, validate_hardware
from openrs.records.run_dir import RunDir
from openrs.runtime.placement import make_plan
from openrs.runtime.ranks import rank_env
from openrs.runtime.worker import weights_digest

REPO = Path(__file__).resolve().parent.parent
FOUR = ["0", "1", "2", "3"]


def run_config(*overrides: str):
    return to_run_config(compose(list(overrides)))


def test_a40x4_puts_three_ranks_and_the_vllm_server_on_the_four_gpus():
    plan = make_plan(run_config("experiment=rs2").hardware, ["4", "5", "6", "7"])  # as SLURM hands them out
    assert plan.train_devices == ("4", "5", "6", "7")[:3] and plan.vllm_devices == ("7",)
    assert plan.num_ranks == 3 and plan.backend == "nccl" and not plan.in_process


def test_colocate_and_single_gpu_presets_train_on_every_gpu_without_a_server():
    plan = make_plan(run_config("experiment=rs2", "hardware=a40x4_colocate").hardware, FOUR)
    assert plan.train_devices == tuple(FOUR) and plan.vllm_devices == () and plan.num_ranks == 4
    plan = make_plan(run_config("experiment=rs2", "hardware=a40x1").hardware, ["0"])
    # One rank, but DeepSpeed (ZeRO-2 with optimizer offload) needs a torch distributed environment: spawned.
    assert plan.num_ranks == 1 and plan.distributed and not plan.in_process


def test_cpu_preset_runs_in_process_and_gloo_for_several_ranks():
    assert make_plan(run_config().hardware, []).in_process
    plan = make_plan(run_config("hardware.num_processes=2").hardware, [])
    assert plan.num_ranks == 2 and plan.backend == "gloo" and plan.train_devices == ()


@pytest.mark.parametrize(
    ("overrides", "gpus", "needle"),
    [
        (["experiment=rs2"], ["0", "1"], "needs 4 GPUs"),
        (["experiment=rs2", "hardware.num_gpus=3"], FOUR, "hardware.num_gpus=3"),
        (["experiment=rs2", "hardware.vllm_gpus=0"], FOUR, "hardware.vllm_gpus >= 1"),
        (["hardware.num_processes=0"], [], "hardware.num_processes=0"),
        (["hardware.use_vllm=true", "hardware.vllm_gpus=1"], [], "set hardware.num_gpus=0 and hardware.vllm_gpus=0"),
        (["experiment=rs2", "hardware.ddp_backend=mpi"], FOUR, "choose null, nccl or gloo"),
    ],
)
def test_impossible_layouts_fail_early_naming_the_field(overrides, gpus, needle):
    with pytest.raises((ValueError, RuntimeError), match=needle.replace("(", r"\(")):
        make_plan(run_config(*overrides).hardware, gpus)


def test_hardware_presets_state_gpus_and_price():
    costs = {}
    for name in ("a40x4", "a40x4_colocate", "a40x1", "cpu"):
        hw = run_config(
            "experiment=rs2",
            f"hardware={name}",
            *(["hardware.per_device_train_batch_size=6"] if name == "cpu" else []),
        ).hardware
        validate_hardware(hw)
        costs[name] = hw.num_gpus * hw.price_per_gpu_hour * 24
    assert costs["a40x4"] == pytest.approx(42.24)  # the paper's ~$42 for 4 A40s x 24 h
    assert costs["a40x4_colocate"] == costs["a40x4"] and costs["a40x1"] == pytest.approx(10.56)
    # Every preset keeps the paper's 72 completions per optimizer step.
    for name in ("a40x4", "a40x4_colocate", "a40x1"):
        hw = run_config("experiment=rs2", f"hardware={name}").hardware
        assert hw.num_processes * hw.per_device_train_batch_size * hw.gradient_accumulation_steps == 72


def test_rank_env_is_the_torch_distributed_environment(tmp_path):
    plan = make_plan(run_config("experiment=rs2").hardware, FOUR)
    env = rank_env(plan, 2, 29511, tmp_path / "stop")
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"]) == ("2", "2", "3")
    assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("127.0.0.1", "29511")
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2"  # the server's GPU stays out of the ranks' sight
    assert env["OPENRS_STOP_FILE"] == str(tmp_path / "stop") and "SUBMITIT_FOLDER" not in env
    assert env["PYTHONUNBUFFERED"] == "1" and int(env["OMP_NUM_THREADS"]) >= 1


@pytest.mark.slow
def test_two_gloo_ranks_train_together_and_agree_on_the_weights(tmp_path):
    """The multi-rank path on CPU: 2 ranks, one run dir, rank 0 writes; both end with the same weights."""
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrs.train",
            "experiment=smoke",
            "hardware.num_processes=2",
            "grpo.max_steps=6",
            "grpo.save_steps=3",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    reports = [json.loads(RunDir(run_dir).rank_report(r).read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world_size"], r["global_step"]) for r in reports] == [(0, 2, 6), (1, 2, 6)]
    assert reports[0]["weights_digest"] == reports[1]["weights_digest"]

    from transformers import AutoModelForCausalLM

    from openrs import models

    final = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    assert weights_digest(final) == reports[0]["weights_digest"], "rank 0 saved other weights than it trained"
    init = models.load_model(run_config("experiment=smoke").model)
    assert weights_digest(init) != reports[0]["weights_digest"], "the ranks did not train"
    # Rank 0 alone wrote the run's records: one line per step, one TensorBoard file, both checkpoints.
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [s for s in steps if s] == [1, 2, 3, 4, 5, 6, 6]  # 6 steps + the final train summary
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/reward")] == [1, 2, 3, 4, 5, 6]
    assert all((run_dir / "checkpoints" / f"checkpoint-{s}" / "COMPLETE").exists() for s in (3, 6))
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 6
