"""Who runs where on this node: how many training ranks, on which GPUs, beside which vLLM server.

The plan is made before anything loads (``python -m openrs.train`` says a preset this node cannot run first); a run
across nodes (openrs.runtime.nodes) gives node 0 the server and every other node its GPUs for training ranks.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from openrs.config import HardwareConfig, VllmMode
from openrs.errors import UsageError
from openrs.runtime.nodes import Node, rank_offset, this_node

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchPlan:
    """Who runs where on this node."""

    num_ranks: int  # training ranks on this node
    train_devices: tuple[str, ...]  # CUDA_VISIBLE_DEVICES of the ranks (empty on CPU)
    vllm_devices: tuple[str, ...]  # CUDA_VISIBLE_DEVICES of the vLLM server (empty: none, or a CPU server)
    backend: str  # torch.distributed backend of the ranks
    distributed: bool = False  # the ranks need a torch distributed environment even alone (DeepSpeed)
    server: bool = False  # a vLLM server runs beside the ranks (on vllm_devices, or on CPU cores)
    node: Node = field(default_factory=Node)  # this node's place in a run across nodes
    world_size: int = 0  # training ranks over all nodes (0: this node's alone)
    first_rank: int = 0  # global rank of this node's first rank
    layout: tuple[tuple[str, tuple[int, ...]], ...] = ()  # a run across nodes: each node's host and global ranks

    @property
    def ranks_in_run(self) -> int:
        return self.world_size or self.num_ranks

    @property
    def in_process(self) -> bool:
        """One rank, no server and nothing that needs torch distributed: train in this process."""
        return self.ranks_in_run == 1 and not self.server and not self.distributed


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


def make_plan(hw: HardwareConfig, gpus: list[str], node: Node | None = None) -> LaunchPlan:
    """Split the node's GPUs: the first ``num_processes`` train, the next ``vllm_gpus`` serve vLLM (node 0; the
    other nodes of a run across nodes train on all of them).

    ``hw`` was checked with the run config (openrs.config.validate_hardware); this only adds what needs the node.
    """
    node = node or Node()
    distributed = bool(hw.deepspeed) or node.count > 1  # DeepSpeed initialises torch distributed, even for one rank
    server = hw.use_vllm and VllmMode(hw.vllm_mode) is VllmMode.server and node.first
    ranks = hw.ranks_on_node(node.index)
    layout, first = [], 0  # each node's host and global ranks, in node order
    for i, host in enumerate(node.hosts):
        layout.append((host, tuple(range(first, first + hw.ranks_on_node(i)))))
        first += hw.ranks_on_node(i)
    where = {"node": node, "world_size": hw.world_size, "first_rank": rank_offset(hw, node), "layout": tuple(layout)}
    if hw.use_cpu:
        return LaunchPlan(ranks, (), (), hw.ddp_backend or "gloo", distributed, server, **where)
    need = ranks + (hw.vllm_gpus if server else 0)
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
    train = tuple(gpus[:ranks])
    vllm = tuple(gpus[ranks:need]) if server else ()
    return LaunchPlan(ranks, train, vllm, hw.ddp_backend or "nccl", distributed, server, **where)


def node_plan(hw: HardwareConfig) -> LaunchPlan:
    """The plan for this node of the run and its visible GPUs (none are looked for on CPU)."""
    return make_plan(hw, [] if hw.use_cpu else visible_gpus(), this_node(hw))
