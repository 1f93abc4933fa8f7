"""Start a run's processes from the one entry point: in-process, or N ranks plus TRL's vLLM server.

One launcher process per node (the Hydra job, or the one SLURM task submitit runs) owns the node: it
splits the visible GPUs between ``trl vllm-serve`` and the training ranks, picks the job's free ports,
starts the server (openrs.runtime.vllm_server) and waits until it answers, spawns the ranks with the torch
distributed environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT), supervises ranks and server
together (either failing ends the run), and stops the server at the end. The same code runs ranks on CPU
with gloo, which is how it is tested. See docs/ARCHITECTURE.md ("Launch") for why.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from openrs.config import HardwareConfig, RunConfig, VllmMode
from openrs.errors import RunError, UsageError
from openrs.procpool.procs import cpu_share, die_with_parent, ignore_stop_signals
from openrs.records.run_dir import RunDir
from openrs.runtime.vllm_server import (
    ServerStartStopped,
    VllmServer,
    free_port,
    no_proxy_env,
    server_failure,
    server_for,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchPlan:
    """Who runs where on this node."""

    num_ranks: int
    train_devices: tuple[str, ...]  # CUDA_VISIBLE_DEVICES of the ranks (empty on CPU)
    vllm_devices: tuple[str, ...]  # CUDA_VISIBLE_DEVICES of the vLLM server (empty: none, or a CPU server)
    backend: str  # torch.distributed backend of the ranks
    distributed: bool = False  # the ranks need a torch distributed environment even alone (DeepSpeed)
    server: bool = False  # a vLLM server runs beside the ranks (on vllm_devices, or on CPU cores)

    @property
    def in_process(self) -> bool:
        """One rank, no server and nothing that needs torch distributed: train in this process."""
        return self.num_ranks == 1 and not self.server and not self.distributed


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES (as SLURM sets it), else what torch counts."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no usable CUDA means no GPUs
        return []


def make_plan(hw: HardwareConfig, gpus: list[str]) -> LaunchPlan:
    """Split the node's GPUs: the first ``num_processes`` train, the next ``vllm_gpus`` serve vLLM.

    ``hw`` was checked with the run config (openrs.config.validate_hardware); this only adds what needs the node.
    """
    distributed = bool(hw.deepspeed)  # DeepSpeed initialises torch distributed, even for one rank
    server = hw.use_vllm and VllmMode(hw.vllm_mode) is VllmMode.server
    if hw.use_cpu:
        return LaunchPlan(hw.num_processes, (), (), hw.ddp_backend or "gloo", distributed, server)
    need = hw.num_processes + (hw.vllm_gpus if server else 0)
    if len(gpus) < need:
        raise UsageError(
            f"hardware={hw.name} needs {need} GPUs (num_processes={hw.num_processes}"
            f"{f' + vllm_gpus={hw.vllm_gpus}' if server else ''}), but {len(gpus)} are visible here "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}). To run it on a GPU node, submit it: "
            "add -m hydra/launcher=submitit_slurm (README: Run on SLURM); to try openrs on this machine: make demo, or "
            "hardware=cpu"
        )
    if len(gpus) > need:
        log.warning("hardware=%s uses %d of the %d visible GPUs", hw.name, need, len(gpus))
    train = tuple(gpus[: hw.num_processes])
    vllm = tuple(gpus[hw.num_processes : need]) if server else ()
    return LaunchPlan(hw.num_processes, train, vllm, hw.ddp_backend or "nccl", distributed, server)


def node_plan(hw: HardwareConfig) -> LaunchPlan:
    """The plan for this machine's visible GPUs (none are looked for on CPU)."""
    return make_plan(hw, [] if hw.use_cpu else visible_gpus())


def rank_env(
    plan: LaunchPlan, rank: int, master_port: int, stop_file: Path, server_host: str = "127.0.0.1"
) -> dict[str, str]:
    """The torch distributed environment of one rank on this node (what torchrun would set), and a direct route to
    the job's vLLM server whatever HTTP proxy the environment names."""
    env = no_proxy_env(dict(os.environ), server_host)
    env.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(plan.num_ranks),
        LOCAL_WORLD_SIZE=str(plan.num_ranks),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(master_port),
        OPENRS_STOP_FILE=str(stop_file),
    )
    env.pop("SUBMITIT_FOLDER", None)  # a rank is not the submitit task: it must not requeue the job
    env.setdefault("PYTHONUNBUFFERED", "1")  # rank logs reach the job's log as they happen
    # N ranks must not each take every core: each gets its share of this job's CPUs (a user's value wins).
    env.setdefault("OMP_NUM_THREADS", str(cpu_share(plan.num_ranks)))
    if plan.train_devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(plan.train_devices)
    if plan.server and not plan.vllm_devices:
        # A vLLM server on the same cores: idle OpenMP threads sleep instead of spinning, on both sides (the smoke
        # run's steps took 2.2x as long with them spinning, measured on 2 cores).
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def rank_command(config_path: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "openrs.runtime.worker", str(config_path), str(run_dir)]


def _child_setup() -> None:
    """In a rank: leave TERM/USR2 to the launcher, and die with it."""
    ignore_stop_signals()
    die_with_parent()


def _supervise(procs: list[subprocess.Popen], server: VllmServer | None = None, poll_s: float = 0.5) -> list[int]:
    """Wait for all ranks; if one fails or the server exits, kill the others (they would hang in a collective)."""
    while True:
        codes = [p.poll() for p in procs]
        server_died = server is not None and server.exit_code() is not None
        if server_died or any(c not in (None, 0) for c in codes):
            for p in procs:
                if p.poll() is None:
                    p.kill()
            return [p.wait() for p in procs]
        if all(c == 0 for c in codes):
            return [0] * len(procs)
        time.sleep(poll_s)


def pick_ports(hw: HardwareConfig, server: bool) -> HardwareConfig:
    """The job's ports: each one the user fixed, else a free one (distinct from the others)."""
    taken: set[int] = {p for p in (hw.master_port, hw.vllm_server_port, hw.vllm_group_port) if p}
    ports = {}
    for key in ("master_port", *(("vllm_server_port", "vllm_group_port") if server else ())):
        ports[key] = getattr(hw, key) or free_port(taken)
        taken.add(ports[key])
    return dataclasses.replace(hw, **ports)


def _prepare_run_dir(run_dir: Path) -> None:
    """A fresh ``.launch/`` dir and half-written checkpoints gone, before any rank starts."""
    from openrs.training import resume

    launch_dir = RunDir(run_dir).launch
    if launch_dir.exists():
        shutil.rmtree(launch_dir)
    launch_dir.mkdir(parents=True)
    resume.discard_incomplete(RunDir(run_dir).checkpoints)  # before any rank looks for a checkpoint


def _check_reports(run_dir: RunDir, num_ranks: int) -> None:
    """The ranks' final reports must agree on the weights."""
    reports = [json.loads(run_dir.rank_report(r).read_text()) for r in range(num_ranks)]
    if len({r["weights_digest"] for r in reports}) != 1:
        raise RuntimeError(f"ranks disagree on the final weights: {[r['weights_digest'][:12] for r in reports]}")


def _with_ports(cfg: RunConfig, plan: LaunchPlan) -> RunConfig:
    """The config with this job's free ports (and the plan's backend) filled in."""
    hw = pick_ports(dataclasses.replace(cfg.hardware, ddp_backend=plan.backend), plan.server)
    log.info(
        "ports: torch distributed %d%s",
        hw.master_port,
        f", vLLM server {hw.vllm_server_port}, weight sync {hw.vllm_group_port}" if plan.server else "",
    )
    return dataclasses.replace(cfg, hardware=hw)


def _relay_preemption(stop_file: Path) -> Any:
    """On submitit's signal or SIGTERM the ranks checkpoint at the end of the step and stop (stop file); the
    returned PreemptSignal hands over (to submitit's requeue) once they have."""
    from openrs.training.preemption import PreemptSignal

    def tell_ranks() -> None:
        log.warning("preemption: asking the ranks to checkpoint at the end of this step and stop")
        stop_file.touch()

    relay = PreemptSignal()
    relay.install(tell_ranks)
    return relay


def _train_beside(
    server: VllmServer | None, cfg: RunConfig, run_dir: Path, plan: LaunchPlan, keep_open: tuple[int, ...]
) -> list[int]:
    """The ranks, spawned beside a running server (or none) and supervised; their exit codes."""
    paths = RunDir(run_dir)
    log.info("starting %d ranks (%s backend) in %s", plan.num_ranks, plan.backend, run_dir)
    procs = [
        subprocess.Popen(
            rank_command(paths.rank_config, run_dir),
            env=rank_env(plan, r, cfg.hardware.master_port, paths.stop_file, cfg.hardware.vllm_server_host),
            preexec_fn=_child_setup,
            pass_fds=keep_open,
        )
        for r in range(plan.num_ranks)
    ]
    codes = _supervise(procs, server)
    if server is not None and server.exit_code() is not None:
        raise server_failure(server, run_dir)
    return codes


def run_ranks(cfg: RunConfig, run_dir: Path, plan: LaunchPlan, keep_open: tuple[int, ...] = ()) -> dict[str, Any]:
    """Spawn the ranks (and the vLLM server), supervise them, check that the ranks agree, return the summary.

    ``keep_open``: file descriptors the ranks inherit (the run dir's lock, so it is held until the last rank ends).
    """
    from contextlib import nullcontext

    _prepare_run_dir(run_dir)
    paths = RunDir(run_dir)
    cfg = _with_ports(cfg, plan)
    OmegaConf.save(OmegaConf.structured(cfg), paths.rank_config)  # the ranks' config, ports included
    relay = _relay_preemption(paths.stop_file)
    server = server_for(cfg, plan, paths, lambda: relay.requested)
    try:
        with server or nullcontext():
            codes = _train_beside(server, cfg, run_dir, plan, keep_open)
    except ServerStartStopped:  # preempted before a step: nothing to save
        relay.hand_over()
        raise
    if any(codes):
        raise RunError(f"training ranks failed with exit codes {codes}; their errors are in the log above ({run_dir})")
    if relay.requested:
        relay.hand_over()
    _check_reports(paths, plan.num_ranks)
    return json.loads(paths.summary.read_text())


def launch(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` with the processes its hardware preset asks for.

    The run dir is locked for the life of the run (openrs.runtime.run_lock); a run that already reached its
    ``max_steps`` is left untouched and its summary returned.
    """
    from openrs import data
    from openrs.runtime.run_lock import RunLock
    from openrs.training import resume
    from openrs.training.ds_ops import require_cpu_adam
    from openrs.training.grpo_config import run_precision
    from openrs.training.loop import run_training
    from openrs.training.warmstart import prepare_model

    run_dir = Path(run_dir)
    plan = node_plan(cfg.hardware)
    if os.environ.get("SLURM_NNODES", "1") != "1":
        raise RuntimeError("one node per run: set hydra.launcher.nodes=1 (multi-node runs are not supported yet)")
    with RunLock(run_dir) as lock:
        done = resume.finished_summary(run_dir, cfg.grpo.max_steps)
        if done is not None:
            print(
                f"{run_dir} is complete (step {done['global_step']} of {done.get('max_steps')}): nothing to do. "
                "Start it with a larger grpo.max_steps to train further.",
                flush=True,
            )
            return done
        lock.record()
        # What can be refused is refused here, before minutes of model building: the precision settings (half-precision
        # weights need float32 masters) and a dataset that cannot be used.
        run_precision(cfg)
        require_cpu_adam(cfg)  # optimizer offload on GPUs: its op loads or builds
        data.load_problems(cfg.dataset)
        prepare_model(cfg.model)  # built once here (tiny model, warm start), not by N ranks at once
        if plan.in_process:
            return run_training(cfg, run_dir)
        return run_ranks(cfg, run_dir, plan, keep_open=(lock.fd,))
