"""A run across nodes, without a cluster: where each node's ranks go, node 0's start record, and two launchers on
this machine standing for two nodes (tests/test_slurm_nodes.py runs the same on the two-node SLURM cluster)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openrs.config import compose, to_run_config
from openrs.errors import RunError, UsageError
from openrs.records.metrics_log import read_metrics
from openrs.records.run_dir import RunDir
from openrs.runtime.nodes import Node, announce_start, job_hosts, this_node, wait_for_start
from openrs.runtime.placement import make_plan
from openrs.runtime.ranks import rank_env

REPO = Path(__file__).resolve().parent.parent


def hardware(*overrides: str):
    return to_run_config(compose(["experiment=rs3", *overrides])).hardware


def slurm_env(monkeypatch, node: int, nodes: int = 2, nodelist: str = "n1,n2", job: str = "77") -> None:
    for key, value in {
        "SLURM_JOB_ID": job,
        "SLURM_NNODES": str(nodes),
        "SLURM_NODEID": str(node),
        "SLURM_JOB_NODELIST": nodelist,
        "SLURM_RESTART_COUNT": "0",
    }.items():
        monkeypatch.setenv(key, value)


def test_node_zero_keeps_the_vllm_gpu_and_the_other_nodes_train_on_all_four():
    hw = hardware("hardware.nodes=2")
    assert [hw.ranks_on_node(n) for n in (0, 1)] == [3, 4] and hw.world_size == 7
    four = ["0", "1", "2", "3"]
    first = make_plan(hw, four, Node(0, 2, "1.0", "n1", ("n1", "n2")))
    assert first.server and first.train_devices == ("0", "1", "2") and first.vllm_devices == ("3",)
    other = make_plan(hw, four, Node(1, 2, "1.0", "n1", ("n1", "n2")))
    assert not other.server and other.train_devices == tuple(four) and other.first_rank == 3
    assert other.layout == (("n1", (0, 1, 2)), ("n2", (3, 4, 5, 6)))
    env = rank_env(other, 2, 29500, Path("stop"))
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"]) == ("5", "2", "7", "4")
    assert env["MASTER_ADDR"] == "n1" and env["GROUP_RANK"] == "1"
    assert json.loads(env["OPENRS_RUN_NODES"])[1] == {"host": "n2", "ranks": [3, 4, 5, 6]}
    colocated = hardware("hardware=a40x4_colocate", "hardware.nodes=3")
    assert colocated.world_size == 12  # no server GPU: four ranks on every node


def test_the_batch_check_counts_every_nodes_ranks():
    with pytest.raises(UsageError, match=r"7 ranks on 2 nodes"):
        hardware("hardware.nodes=2", "hardware.per_device_train_batch_size=2", "grpo.steps_per_generation=1")


def test_this_node_reads_the_slurm_job_and_refuses_a_mismatch(monkeypatch):
    for key in ("SLURM_JOB_ID", "SLURM_NNODES", "SLURM_NODEID", "SLURM_JOB_NODELIST"):
        monkeypatch.delenv(key, raising=False)
    assert this_node(hardware()) == Node()
    with pytest.raises(UsageError, match=r"hardware.nodes=2, but this runs in no SLURM job.*submitit_slurm"):
        this_node(hardware("hardware.nodes=2"))
    slurm_env(monkeypatch, node=1)
    node = this_node(hardware("hardware.nodes=2"))
    assert (node.index, node.count, node.job, node.master_host, node.first) == (1, 2, "77.0", "n1", False)
    with pytest.raises(UsageError, match=r"hardware.nodes=1, but this runs in a SLURM job of 2 node"):
        this_node(hardware())


def test_a_slurm_node_list_expands_to_hosts():
    assert job_hosts("a,b") == ("a", "b")
    if subprocess.run(["which", "scontrol"], capture_output=True).returncode == 0:
        assert job_hosts("n[1-3]") == ("n1", "n2", "n3")


def test_the_other_nodes_wait_for_this_attempts_start_record(tmp_path):
    paths = RunDir(tmp_path)
    paths.launch.mkdir()
    announce_start(paths, Node(0, 2, "9.0", "n1"), master_port=1234)  # an earlier attempt's
    with pytest.raises(RunError, match="node 0 did not start the run within 1 s"):
        wait_for_start(paths, Node(1, 2, "9.1", "n1"), timeout_s=1, poll_s=0.1)
    announce_start(paths, Node(0, 2, "9.1", "n1"), master_port=4321)
    assert wait_for_start(paths, Node(1, 2, "9.1", "n1"), timeout_s=1)["master_port"] == 4321


@pytest.mark.slow
def test_two_launchers_on_this_machine_train_one_run(tmp_path):
    """Two launchers with the environment SLURM gives the tasks of a two-node job: one run of 4 ranks."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "openrs.train", "experiment=smoke", "hardware.nodes=2", "hardware.num_processes=2"]
    cmd += ["grpo.max_steps=4", f"hydra.run.dir={run_dir}"]
    env = dict(os.environ, SLURM_JOB_ID="4242", SLURM_NNODES="2", SLURM_JOB_NODELIST="127.0.0.1,localhost")
    procs = [
        subprocess.Popen(cmd, cwd=REPO, env=dict(env, SLURM_NODEID=str(n)), stdout=subprocess.PIPE, text=True)
        for n in (1, 0)  # node 1 first: it waits for node 0
    ]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "openrs: done, 4 steps" in outs[1] and "openrs: done" not in outs[0]  # node 0 reports
    assert "hardware cpu (4 ranks on 2 nodes)" in outs[1]
    reports = [json.loads(RunDir(run_dir).rank_report(r).read_text()) for r in range(4)]
    assert {r["world_size"] for r in reports} == {4} and len({r["weights_digest"] for r in reports}) == 1
    assert [r["step"] for r in read_metrics(run_dir) if "reward" in r] == [1, 2, 3, 4]
    nodes = json.loads(RunDir(run_dir).provenance.read_text())["nodes"]
    assert nodes == [{"host": "127.0.0.1", "ranks": [0, 1]}, {"host": "localhost", "ranks": [2, 3]}]


def test_cost_counts_every_nodes_gpus(tmp_path):
    from openrs.records.tb import build_monitoring

    for nodes in (1, 2):
        cfg = to_run_config(compose(["experiment=rs3", f"hardware.nodes={nodes}"]))
        _, (observer, _) = build_monitoring(cfg, tmp_path, [])
        assert observer.num_gpus == 4 * nodes
