"""DeepSpeed ZeRO-2 on CPU, through openrs's own launcher: sharded optimizer, checkpoints, kill -9 and resume.

DeepSpeed runs on its CPU accelerator (openrs sets ``DS_ACCELERATOR=cpu`` where no NVIDIA device exists) over
gloo: the GPU presets' path (``hardware.deepspeed`` -> ``TrainingArguments.deepspeed`` -> DeepSpeed engine in
every rank) with only the device swapped. Each test checks something only a real DeepSpeed run leaves behind:
the per-rank ZeRO optimizer shards, the filled-in DeepSpeed config in the provenance, DeepSpeed's CPU Adam.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from test_resume import _checkpoints, _kill_when, _logged_steps, _start

from openrs.config import compose, to_run_config
from openrs.records.metrics_log import read_metrics
from openrs.records.run_dir import RunDir
from openrs.runtime.worker import weights_digest
from openrs.training.checkpoints import MARKER, WEIGHTS_ONLY

# The smoke experiment on 2 gloo ranks under ZeRO-2; 16 completion tokens keep a step well under a second.
ZERO2 = [
    "experiment=smoke",
    "hardware=cpu",
    "hardware.num_processes=2",
    "hardware.deepspeed=deepspeed/zero2.json",
    "hardware.bf16=false",
    "max_len=16",
]


def _train(run_dir: Path, log_path: Path, *overrides: str, timeout: float = 600) -> str:
    """Run ``python -m openrs.train`` to the end; return its output (this run's part of ``log_path``)."""
    start = log_path.stat().st_size if log_path.exists() else 0
    proc = _start([*overrides, f"hydra.run.dir={run_dir}"], log_path)
    try:
        rc = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log_path.read_bytes()[start:].decode(errors="replace")
    assert rc == 0, out[-4000:]
    return out


def _rank_reports(run_dir: Path, world_size: int) -> list[dict[str, Any]]:
    return [json.loads(RunDir(run_dir).rank_report(r).read_text()) for r in range(world_size)]


def _final_and_initial_digests(run_dir: Path) -> tuple[str, str]:
    """Digests of the saved final model and of the untrained tiny model it started from."""
    from transformers import AutoModelForCausalLM

    from openrs import models

    final = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    init = models.load_model(to_run_config(compose(["experiment=smoke"])).model)
    return weights_digest(final), weights_digest(init)


def _zero_shard(checkpoint: Path, rank: int) -> dict[str, Any]:
    """One rank's ZeRO optimizer shard of ``checkpoint`` (it pickles DeepSpeed types: not weights_only)."""
    import torch

    step = checkpoint.name.split("-")[-1]
    path = checkpoint / f"global_step{step}" / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt"
    return torch.load(path, map_location="cpu", weights_only=False)["optimizer_state_dict"]


def _assert_zero2_checkpoint(checkpoint: Path, world_size: int) -> None:
    """A marked ``checkpoint-<step>`` in DeepSpeed's layout: ``global_step<step>/``, one shard per rank; or, for
    an older one cut down by ``grpo.keep_full_state``, its weights without the DeepSpeed states."""
    step = checkpoint.name.split("-")[-1]
    assert (checkpoint / MARKER).exists(), f"{checkpoint} has no {MARKER} marker"
    ds_dir = checkpoint / f"global_step{step}"
    if (checkpoint / WEIGHTS_ONLY).exists():
        assert (checkpoint / "model.safetensors").is_file() and not ds_dir.exists(), sorted(checkpoint.iterdir())
        return
    assert (checkpoint / "latest").read_text().strip() == ds_dir.name  # what DeepSpeed loads on resume
    assert (ds_dir / "mp_rank_00_model_states.pt").is_file()
    shards = sorted(p.name for p in ds_dir.glob("zero_pp_rank_*_mp_rank_00_optim_states.pt"))
    assert shards == [f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in range(world_size)], shards
    if world_size > 1:  # transformers keeps each rank's RNG state
        assert all((checkpoint / f"rng_state_{r}.pth").is_file() for r in range(world_size))
    shard = _zero_shard(checkpoint, 0)
    assert int(shard["zero_stage"]) == 2
    assert set(shard["partition_count"]) == {world_size}, "the optimizer state is not split across the ranks"


def _provenance_deepspeed(run_dir: Path) -> dict[str, Any]:
    ds = json.loads((run_dir / "provenance.json").read_text())["deepspeed_config"]
    assert ds is not None, "provenance records no DeepSpeed config"
    return ds


@pytest.mark.slow
def test_zero2_two_ranks_train_shard_checkpoints_and_agree(tmp_path):
    """Two ZeRO-2 ranks train 4 steps: same weights on both, moved from the start, ZeRO checkpoints marked."""
    run_dir = tmp_path / "run"
    _train(run_dir, tmp_path / "train.log", *ZERO2, "grpo.max_steps=4", "grpo.save_steps=2")

    reports = _rank_reports(run_dir, 2)
    assert [(r["rank"], r["world_size"], r["global_step"]) for r in reports] == [(0, 2, 4), (1, 2, 4)]
    assert reports[0]["weights_digest"] == reports[1]["weights_digest"]
    final, init = _final_and_initial_digests(run_dir)
    assert final == reports[0]["weights_digest"], "rank 0 saved other weights than it trained"
    assert final != init, "the ranks did not train"

    assert sorted(_checkpoints(run_dir)) == [2, 4]
    for ckpt in _checkpoints(run_dir).values():
        _assert_zero2_checkpoint(ckpt, world_size=2)
    assert [s for s, p in _checkpoints(run_dir).items() if not (p / WEIGHTS_ONLY).exists()] == [4]  # newest full

    # The config DeepSpeed ran with: the preset's JSON with TRL/transformers' "auto" values filled in.
    ds = _provenance_deepspeed(run_dir)
    assert ds["zero_optimization"]["stage"] == 2 and ds["zero_optimization"]["offload_optimizer"]["device"] == "none"
    micro = to_run_config(compose(ZERO2)).hardware.per_device_train_batch_size
    assert ds["train_micro_batch_size_per_gpu"] == micro and ds["train_batch_size"] == 2 * micro
    assert ds["bf16"]["enabled"] is False
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 4


def _rank_pids(run_dir: Path) -> list[int]:
    """Live (not zombie) ``openrs.runtime.worker`` processes of this run dir."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile
        if b"openrs.runtime.worker" in cmdline and str(run_dir).encode() in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_zero2_kill9_of_the_launcher_resumes_from_the_zero_checkpoint(tmp_path):
    """kill -9 the launcher past a ZeRO checkpoint: no rank survives; the same command resumes there."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    max_steps = 6
    run_dir, log_path = tmp_path / "run", tmp_path / "train.log"
    command = [*ZERO2, f"grpo.max_steps={max_steps}", "grpo.save_steps=2"]

    # 1. Kill once a checkpoint is complete and the run has logged a step beyond it. Only the launcher is
    # killed (not its process group): the ranks must die of PR_SET_PDEATHSIG alone.
    ranks: list[int] = []

    def past_a_complete_checkpoint() -> bool:
        marked = [s for s, p in _checkpoints(run_dir).items() if (p / MARKER).exists()]
        if not marked or max(_logged_steps(run_dir), default=0) <= max(marked):
            return False
        ranks[:] = _rank_pids(run_dir)
        return True

    proc = _start([*command, f"hydra.run.dir={run_dir}"], log_path)
    _kill_when(proc, past_a_complete_checkpoint, "a step past a complete checkpoint", 500, interval=0.05)
    assert len(ranks) == 2, f"expected 2 ranks running, found {ranks}"
    deadline = time.monotonic() + 30
    while (alive := _rank_pids(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:  # clean up before failing, by pid
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"ranks {alive} survived the launcher's kill -9"

    complete = sorted(s for s, p in _checkpoints(run_dir).items() if (p / MARKER).exists())
    newest, killed_at = complete[-1], max(_logged_steps(run_dir))
    assert newest < killed_at < max_steps, (complete, killed_at)

    # 2. The same command again: resumes from the newest complete ZeRO checkpoint and trains to the end.
    out = _train(run_dir, log_path, *command)
    resumed_from = run_dir / "checkpoints" / f"checkpoint-{newest}"
    assert f"resuming from {resumed_from}" in out
    starts = [json.loads(line) for line in (run_dir / "starts.jsonl").read_text().splitlines()]
    assert [s["resumed_step"] for s in starts] == [0, newest]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == max_steps and summary["resumed_from"] == str(resumed_from)

    reports = _rank_reports(run_dir, 2)
    assert [r["global_step"] for r in reports] == [max_steps, max_steps]
    assert reports[0]["weights_digest"] == reports[1]["weights_digest"]
    assert sorted(_checkpoints(run_dir)) == [2, 4, 6]
    for ckpt in _checkpoints(run_dir).values():
        _assert_zero2_checkpoint(ckpt, world_size=2)

    # The killed attempt's steps past the checkpoint were logged twice; the readers keep the last record.
    raw = [r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "reward" in r]
    assert raw == [*range(1, killed_at + 1), *range(newest + 1, max_steps + 1)]
    assert [r["step"] for r in read_metrics(run_dir) if "reward" in r] == list(range(1, max_steps + 1))
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/reward")] == list(range(1, max_steps + 1))


@pytest.mark.slow
def test_zero2_optimizer_offload_one_rank_trains_with_deepspeed_cpu_adam(tmp_path):
    """``hardware=a40x1``'s DeepSpeed setup (ZeRO-2, optimizer offload, accumulation) on one CPU rank."""
    run_dir = tmp_path / "run"
    # The first run on a machine JIT-compiles CPU Adam (about 1.5 min on 2 busy cores); later runs load it.
    _train(
        run_dir,
        tmp_path / "train.log",
        "experiment=smoke",
        "hardware=cpu",
        "hardware.num_processes=1",
        "hardware.deepspeed=deepspeed/zero2_offload.json",
        "hardware.gradient_accumulation_steps=2",
        "max_len=16",
        "grpo.max_steps=2",
        "grpo.save_steps=2",
        timeout=900,
    )

    (report,) = _rank_reports(run_dir, 1)
    assert (report["world_size"], report["global_step"]) == (1, 2)
    final, init = _final_and_initial_digests(run_dir)
    assert final == report["weights_digest"] and final != init
    ds = _provenance_deepspeed(run_dir)
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu" and ds["gradient_accumulation_steps"] == 2
    (ckpt,) = _checkpoints(run_dir).values()
    _assert_zero2_checkpoint(ckpt, world_size=1)
    # Under offload accelerate swaps torch's AdamW for DeepSpeedCPUAdam (the C++ op); its param groups carry
    # DeepSpeed's own `bias_correction` option, which torch's AdamW has not.
    groups = _zero_shard(ckpt, 0)["base_optimizer_state"]["param_groups"]
    assert groups and all(g.get("bias_correction") is True for g in groups), groups


def test_pip_ninja_is_put_on_path_for_deepspeeds_jit_ops(tmp_path, monkeypatch):
    """A venv's python run without activating the venv still finds the ninja wheel's binary."""
    import shutil

    import ninja

    from openrs.training.ds_ops import expose_ninja

    monkeypatch.setenv("PATH", str(tmp_path))  # no ninja anywhere on PATH
    assert shutil.which("ninja") is None
    expose_ninja()
    assert shutil.which("ninja") == str(Path(ninja.BIN_DIR) / "ninja")
    expose_ninja()  # idempotent
    assert os.environ["PATH"].split(os.pathsep) == [ninja.BIN_DIR, str(tmp_path)]


def test_a_lock_left_by_a_killed_build_is_cleared_and_a_live_build_is_left_alone(tmp_path, capsys):
    """torch waits on a JIT build's lock file forever: one no process works beside is removed, others stay."""
    import subprocess

    from openrs.training.ds_ops import clear_stale_build_locks

    old = time.time() - 600
    for name in ("killed", "building", "fresh"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lock").touch()
    os.utime(tmp_path / "killed" / "lock", (old, old))
    os.utime(tmp_path / "building" / "lock", (old, old))
    compiler = subprocess.Popen(["sleep", "60"], cwd=tmp_path / "building")  # stands for ninja in its build folder
    try:
        removed = clear_stale_build_locks(tmp_path)
    finally:
        compiler.kill()
        compiler.wait()
    assert removed == [tmp_path / "killed" / "lock"]
    assert not (tmp_path / "killed" / "lock").exists()
    assert (tmp_path / "building" / "lock").exists() and (tmp_path / "fresh" / "lock").exists()
    assert "stale build lock" in capsys.readouterr().err


def test_each_environment_builds_its_jit_ops_in_a_folder_of_its_own(monkeypatch, tmp_path):
    """Two venvs (another torch) never share a build folder; a TORCH_EXTENSIONS_DIR the user set wins."""
    import sys

    from openrs.training import ds_ops

    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    here = ds_ops.extensions_dir()
    monkeypatch.setattr(sys, "prefix", "/elsewhere/.venv")
    assert ds_ops.extensions_dir() != here
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    ds_ops.prepare_jit_ops()
    assert ds_ops.extensions_dir() == tmp_path and os.environ["TORCH_EXTENSIONS_DIR"] == str(tmp_path)


def _no_build_tools(monkeypatch, tmp_path) -> None:
    """A CUDA node with none of what DeepSpeed's op builder needs, and no CPU Adam built anywhere."""
    import sysconfig

    from deepspeed.git_version_info import installed_ops
    from deepspeed.ops.op_builder import builder

    from openrs.training import ds_ops

    def no_cuda_home(name=""):
        raise builder.MissingCUDAException("CUDA_HOME does not exist, unable to compile CUDA op(s)")

    monkeypatch.setitem(installed_ops, "cpu_adam", False)
    monkeypatch.setattr(builder, "assert_no_cuda_mismatch", no_cuda_home)
    monkeypatch.setattr(ds_ops, "extensions_dir", lambda: tmp_path / "ext")
    monkeypatch.setattr(ds_ops, "ninja_dir", lambda: None)
    monkeypatch.setenv("CXX", "no-such-c++")
    paths = {**sysconfig.get_paths(), "include": str(tmp_path / "include")}
    monkeypatch.setattr(sysconfig, "get_paths", lambda *a, **k: paths)


def test_cpu_adam_preflight_names_each_missing_piece_and_accepts_a_built_op(monkeypatch, tmp_path):
    """Offload's CPU Adam op: prebuilt or built here earlier passes; otherwise every missing build tool is named."""
    from deepspeed.git_version_info import installed_ops

    from openrs.training.ds_ops import cpu_adam_problem

    _no_build_tools(monkeypatch, tmp_path)
    assert cpu_adam_problem() == (
        "CUDA_HOME does not exist, unable to compile CUDA op(s); no ninja (pip install ninja); no C++ compiler "
        f"(no-such-c++ is not on PATH); no Python headers ({tmp_path / 'include' / 'Python.h'}; install python3-dev)"
    )
    (tmp_path / "ext" / "cpu_adam").mkdir(parents=True)
    (tmp_path / "ext" / "cpu_adam" / "cpu_adam.so").touch()  # an earlier run's JIT build
    assert cpu_adam_problem() is None
    (tmp_path / "ext" / "cpu_adam" / "cpu_adam.so").unlink()
    monkeypatch.setitem(installed_ops, "cpu_adam", True)  # DS_BUILD_CPU_ADAM=1 at install
    assert cpu_adam_problem() is None


def test_a_gpu_run_with_optimizer_offload_is_refused_before_loading_when_cpu_adam_cannot_build(monkeypatch, tmp_path):
    from openrs.errors import RunError
    from openrs.training.ds_ops import require_cpu_adam

    _no_build_tools(monkeypatch, tmp_path)
    offload = to_run_config(compose(["experiment=rs2", "hardware=a40x1"]))
    with pytest.raises(RunError, match=r"offloads the optimizer.*no ninja.*DS_BUILD_CPU_ADAM=1"):
        require_cpu_adam(offload)
    require_cpu_adam(to_run_config(compose(["experiment=rs2"])))  # zero2.json: the optimizer stays on the GPU
    require_cpu_adam(to_run_config(compose(["experiment=smoke", "hardware.deepspeed=deepspeed/zero2_offload.json"])))
