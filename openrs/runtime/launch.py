"""Start a run's processes from the one entry point: in-process, or N ranks plus TRL's vLLM server.

One launcher process per node (the Hydra job, or the one SLURM task submitit runs) owns the node: it
splits the visible GPUs between ``trl vllm-serve`` and the training ranks (openrs.runtime.placement), picks the
job's free ports, starts the server (openrs.runtime.vllm_server) and waits until it answers, spawns the ranks with
the torch distributed environment (openrs.runtime.ranks), supervises ranks and server together (either failing ends
the run), and stops the server at the end. In a run across nodes node 0 does all that once and the other nodes'
launchers follow it (openrs.runtime.nodes). The same code runs ranks on CPU with gloo, which is how it is tested.
See docs/ARCHITECTURE.md ("Launch") for why.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from openrs.config import HardwareConfig, RunConfig
from openrs.errors import RunError
from openrs.records.run_dir import RunDir
from openrs.runtime.nodes import announce_start, wait_for_files, wait_for_start
from openrs.runtime.placement import LaunchPlan, node_plan
from openrs.runtime.ranks import spawn_ranks, supervise
from openrs.runtime.vllm_server import ServerStartStopped, VllmServer, free_port, server_failure, server_for

log = logging.getLogger(__name__)


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


def _check_reports(run_dir: RunDir, num_ranks: int, timeout_s: float = 0) -> None:
    """The ranks' final reports (the other nodes' too, waited for up to ``timeout_s``) must agree on the weights."""
    wait_for_files([run_dir.rank_report(r) for r in range(num_ranks)], timeout_s, "the ranks' final reports")
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
    log.info("starting %d ranks (%s backend) in %s", plan.num_ranks, plan.backend, run_dir)
    hw = cfg.hardware
    if plan.node.count > 1:  # the other nodes start their ranks now (the server is up)
        announce_start(RunDir(run_dir), plan.node, master_port=hw.master_port)
    procs = spawn_ranks(plan, run_dir, hw.master_port, hw.vllm_server_host, keep_open)
    codes = supervise(procs, server)
    if server is not None and server.exit_code() is not None:
        raise server_failure(server, run_dir)
    return codes


def follow_node_zero(cfg: RunConfig, run_dir: Path, plan: LaunchPlan) -> dict[str, Any]:
    """A node other than 0: wait for node 0's start, run this node's ranks on its config, leave preemption to it."""
    from openrs.training.warmstart import prepare_model

    paths, node = RunDir(run_dir), plan.node
    start = wait_for_start(paths, node, cfg.hardware.vllm_server_timeout_s + 600)
    if start.get("done"):
        return {"node": node.index, "done": True}
    prepare_model(cfg.model)  # nothing to do where node 0's model cache is shared
    relay = _relay_preemption(paths.stop_file)
    log.info("node %d: starting ranks %d-%d", node.index, plan.first_rank, plan.first_rank + plan.num_ranks - 1)
    codes = supervise(spawn_ranks(plan, run_dir, start["master_port"], cfg.hardware.vllm_server_host))
    if any(codes):
        raise RunError(f"node {node.index}: training ranks failed with exit codes {codes} (their errors are above)")
    if relay.requested:
        relay.hand_over(exit_code=0)  # node 0 checkpoints and requeues; this node leaves cleanly
    return {"node": node.index}


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
    _check_reports(paths, plan.ranks_in_run, timeout_s=120 if plan.node.count > 1 else 0)
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
    if not plan.node.first:  # node 0 holds the lock and prepares the run dir for all nodes
        return follow_node_zero(cfg, run_dir, plan)
    with RunLock(run_dir) as lock:
        done = resume.finished_summary(run_dir, cfg.grpo.max_steps)
        if done is not None:
            print(
                f"{run_dir} is complete (step {done['global_step']} of {done.get('max_steps')}): nothing to do. "
                "Start it with a larger grpo.max_steps to train further.",
                flush=True,
            )
            if plan.node.count > 1:
                announce_start(RunDir(run_dir), plan.node, done=True)
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
