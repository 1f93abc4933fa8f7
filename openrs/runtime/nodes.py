"""One run across several nodes of a SLURM job: which node this launcher is, where rank 0 listens, and node 0's
word to the others that they may start.

One launcher runs on each node (one SLURM task a node, as submitit starts them with ``nodes=N,
tasks_per_node=1``). Node 0 (``SLURM_NODEID`` 0, the first host of ``SLURM_JOB_NODELIST``) does what must happen once:
it holds the run dir's lock, prepares the run dir, picks the job's ports, writes the ranks' config, starts the vLLM
server and only then writes ``.launch/start.json`` with rank 0's address and port. The other nodes wait for that
file, stamped with this job attempt (job id and restart count, so a file left by an earlier attempt is never read),
then start their ranks on the config node 0 wrote. The run dir must be on a filesystem every node sees.

Written by hand: torchrun's rendezvous expects the same number of ranks on every node, and node 0 here has fewer
(its vLLM GPU); submitit's ``TorchDistributedEnvironment`` describes one rank a task.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from openrs.config import HardwareConfig
from openrs.errors import RunError, UsageError
from openrs.records.atomic import write_json_atomic
from openrs.records.run_dir import RunDir


@dataclass(frozen=True)
class Node:
    """This launcher's place in the run."""

    index: int = 0  # SLURM_NODEID
    count: int = 1  # nodes in the run
    job: str = ""  # this job attempt: "<SLURM_JOB_ID>.<SLURM_RESTART_COUNT>"
    master_host: str = "127.0.0.1"  # where rank 0 listens: node 0's host name
    hosts: tuple[str, ...] = ()  # the job's hosts, node 0 first

    @property
    def first(self) -> bool:
        return self.index == 0


def job_hosts(nodelist: str) -> tuple[str, ...]:
    """The host names of a SLURM node list (``n[1-2]``), as ``scontrol show hostnames`` expands it."""
    try:
        out = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        hosts = tuple(out.split())
    except (OSError, subprocess.SubprocessError):
        hosts = ()
    if not hosts and "[" not in nodelist:  # a plain comma list needs no scontrol
        hosts = tuple(h for h in nodelist.split(",") if h)
    if not hosts:
        raise RunError(f"SLURM_JOB_NODELIST={nodelist!r}: scontrol could not expand it into host names")
    return hosts


def this_node(hw: HardwareConfig) -> Node:
    """Where this launcher stands; a job whose node count differs from ``hardware.nodes`` is refused."""
    env = os.environ
    job_nodes = int(env.get("SLURM_NNODES", "1") or 1) if "SLURM_JOB_ID" in env else 1
    if hw.nodes == 1 and job_nodes == 1:
        return Node()
    if job_nodes != hw.nodes:
        where = f"a SLURM job of {job_nodes} node(s)" if "SLURM_JOB_ID" in env else "no SLURM job"
        raise UsageError(
            f"hardware.nodes={hw.nodes}, but this runs in {where}: a run across nodes is one SLURM job with a "
            f"task a node; submit it with -m hydra/launcher=submitit_slurm (its nodes follow hardware.nodes), or set "
            f"hardware.nodes={job_nodes}"
        )
    hosts = job_hosts(env["SLURM_JOB_NODELIST"])
    job = f"{env['SLURM_JOB_ID']}.{env.get('SLURM_RESTART_COUNT', '0') or '0'}"
    return Node(int(env.get("SLURM_NODEID", "0")), job_nodes, job, hosts[0], hosts)


def rank_offset(hw: HardwareConfig, node: Node) -> int:
    """Global rank of this node's first rank."""
    return sum(hw.ranks_on_node(n) for n in range(node.index))


def announce_start(paths: RunDir, node: Node, **facts: Any) -> None:
    """Node 0: the run dir is ready (and the server up); the other nodes may start their ranks."""
    paths.launch.mkdir(parents=True, exist_ok=True)
    write_json_atomic(paths.start_file, {"job": node.job, "master_host": node.master_host, **facts})


def wait_for_start(paths: RunDir, node: Node, timeout_s: float, poll_s: float = 0.5) -> dict[str, Any]:
    """The other nodes: node 0's start record for this job attempt, once it is there."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            record = json.loads(paths.start_file.read_text())
            if record.get("job") == node.job:
                return record
        except (OSError, ValueError):
            pass  # not written yet, or an earlier attempt's being replaced
        if time.monotonic() > deadline:
            raise RunError(
                f"node {node.index}: node 0 did not start the run within {timeout_s:.0f} s (no {paths.start_file} "
                f"for job {node.job}); is {paths.root} on a filesystem every node sees?"
            )
        time.sleep(poll_s)


def wait_for_files(paths: list[Any], timeout_s: float, what: str, poll_s: float = 0.5) -> None:
    """Until every path exists; a RunError naming ``what`` and the missing ones after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while missing := [p for p in paths if not p.exists()]:
        if time.monotonic() > deadline:
            raise RunError(f"{what}: still missing after {timeout_s:.0f} s: {', '.join(map(str, missing[:4]))}")
        time.sleep(poll_s)
