"""A node's training ranks: their torch distributed environment, their processes, and their supervision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from openrs.procpool.procs import cpu_share, die_with_parent, ignore_stop_signals
from openrs.runtime.placement import LaunchPlan
from openrs.runtime.vllm_server import VllmServer, no_proxy_env


def rank_env(
    plan: LaunchPlan, local_rank: int, master_port: int, stop_file: Path, server_host: str = "127.0.0.1"
) -> dict[str, str]:
    """The torch distributed environment of one rank on this node (what torchrun would set), and a direct route to
    the job's vLLM server whatever HTTP proxy the environment names."""
    env = no_proxy_env(dict(os.environ), server_host)
    env.update(
        RANK=str(plan.first_rank + local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(plan.ranks_in_run),
        LOCAL_WORLD_SIZE=str(plan.num_ranks),
        GROUP_RANK=str(plan.node.index),  # the node's index, as torchrun names it
        MASTER_ADDR=plan.node.master_host,
        MASTER_PORT=str(master_port),
        OPENRS_STOP_FILE=str(stop_file),
    )
    if plan.layout:  # recorded in provenance.json
        env["OPENRS_RUN_NODES"] = json.dumps([{"host": host, "ranks": list(ranks)} for host, ranks in plan.layout])
    env.pop("SUBMITIT_FOLDER", None)  # a rank is not the submitit task: it must not requeue the job
    env.setdefault("PYTHONUNBUFFERED", "1")  # rank logs reach the job's log as they happen
    # N ranks must not each take every core: each gets its share of this job's CPUs (a user's value wins).
    env.setdefault("OMP_NUM_THREADS", str(cpu_share(plan.num_ranks)))
    if plan.train_devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(plan.train_devices)
    else:
        # accelerate names a CPU rank's device "cpu:<local rank>", a location torch.load cannot map onto, so a
        # multi-rank CPU run could not load its optimizer state on resume; plain "cpu" can.
        env.setdefault("ACCELERATE_TORCH_DEVICE", "cpu")
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


def spawn_ranks(
    plan: LaunchPlan,
    run_dir: Path,
    master_port: int,
    server_host: str = "127.0.0.1",
    keep_open: tuple[int, ...] = (),
) -> list[subprocess.Popen]:
    """This node's ranks, on the ranks' config in ``run_dir`` (what the node's launcher, or node 0's, wrote)."""
    from openrs.records.run_dir import RunDir

    paths = RunDir(run_dir)
    return [
        subprocess.Popen(
            rank_command(paths.rank_config, run_dir),
            env=rank_env(plan, r, master_port, paths.stop_file, server_host),
            preexec_fn=_child_setup,
            pass_fds=keep_open,
        )
        for r in range(plan.num_ranks)
    ]


def supervise(procs: list[subprocess.Popen], server: VllmServer | None = None, poll_s: float = 0.5) -> list[int]:
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
