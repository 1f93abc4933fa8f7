"""Start a run's processes from the one entry point: in-process, or N ranks plus TRL's vLLM server.

One launcher process per node (the Hydra job, or the one SLURM task submitit runs) owns the node: it
splits the visible GPUs between ``trl vllm-serve`` and the training ranks, starts the server and waits
until it answers, spawns the ranks with the torch distributed environment (RANK, LOCAL_RANK,
WORLD_SIZE, MASTER_ADDR/PORT), supervises them, and stops the server at the end. The same code runs
ranks on CPU with gloo, which is how it is tested. See docs/ARCHITECTURE.md ("Launch") for why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from openrs.config import HardwareConfig, RunConfig, VllmMode
from openrs.grpo_config import vllm_max_model_length

log = logging.getLogger(__name__)

LAUNCH_DIR = ".launch"  # inside the run dir: the ranks' config, stop file, per-rank reports


@dataclass(frozen=True)
class LaunchPlan:
    """Who runs where on this node."""

    num_ranks: int
    train_devices: tuple[str, ...]  # CUDA_VISIBLE_DEVICES of the ranks (empty on CPU)
    vllm_devices: tuple[str, ...]  # CUDA_VISIBLE_DEVICES of the vLLM server (empty: no server)
    backend: str  # torch.distributed backend of the ranks
    distributed: bool = False  # the ranks need a torch distributed environment even alone (DeepSpeed)

    @property
    def in_process(self) -> bool:
        """One rank, no server and nothing that needs torch distributed: train in this process."""
        return self.num_ranks == 1 and not self.vllm_devices and not self.distributed


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
    if hw.use_cpu:
        return LaunchPlan(hw.num_processes, (), (), hw.ddp_backend or "gloo", distributed)
    server = hw.use_vllm and VllmMode(hw.vllm_mode) is VllmMode.server
    need = hw.num_processes + (hw.vllm_gpus if server else 0)
    if len(gpus) < need:
        raise RuntimeError(
            f"hardware={hw.name} needs {need} GPUs (num_processes={hw.num_processes}"
            f"{f' + vllm_gpus={hw.vllm_gpus}' if server else ''}), but {len(gpus)} are visible "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"
        )
    if len(gpus) > need:
        log.warning("hardware=%s uses %d of the %d visible GPUs", hw.name, need, len(gpus))
    train = tuple(gpus[: hw.num_processes])
    vllm = tuple(gpus[hw.num_processes : need]) if server else ()
    return LaunchPlan(hw.num_processes, train, vllm, hw.ddp_backend or "nccl", distributed)


def free_port() -> int:
    """A TCP port nothing listens on right now (several jobs may share a node)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vllm_serve_command(cfg: RunConfig, port: int) -> list[str]:
    """``trl vllm-serve`` for the policy model, on the server's GPUs (tensor parallel over them)."""
    hw, model = cfg.hardware, cfg.model
    cmd = [
        "trl", "vllm-serve",
        "--model", model.name_or_path,
        "--tensor_parallel_size", str(max(1, hw.vllm_gpus)),
        "--gpu_memory_utilization", str(hw.vllm_gpu_memory_utilization),
        "--dtype", getattr(model.dtype, "value", model.dtype),
        "--host", hw.vllm_server_host,
        "--port", str(port),
    ]  # fmt: skip
    if model.revision:
        cmd += ["--revision", model.revision]
    cmd += ["--max_model_len", str(vllm_max_model_length(cfg))]
    if hw.vllm_enforce_eager:
        cmd += ["--enforce_eager", "true"]
    if model.trust_remote_code:
        cmd += ["--trust_remote_code", "true"]
    return cmd


def rank_env(plan: LaunchPlan, rank: int, master_port: int, stop_file: Path) -> dict[str, str]:
    """The torch distributed environment of one rank on this node (what torchrun would set)."""
    env = dict(os.environ)
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
    if plan.train_devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(plan.train_devices)
    else:
        env.setdefault("OMP_NUM_THREADS", "1")  # N CPU ranks must not each take every core
    return env


def rank_command(config_path: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "openrs.worker", str(config_path), str(run_dir)]


def _ignore_stop_signals() -> None:
    """In a child: SLURM signals every process of a job; only the launcher acts on TERM/USR2.

    The child also dies with the launcher (Linux PR_SET_PDEATHSIG), so a ``kill -9`` of the launcher
    leaves no rank or server behind.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass


class VllmServer:
    """``trl vllm-serve`` as a child process: started, awaited until ``/health`` answers, stopped."""

    def __init__(self, cmd: list[str], devices: tuple[str, ...], url: str, log_path: Path, timeout_s: float):
        self.cmd, self.devices, self.url, self.log_path, self.timeout_s = cmd, devices, url, log_path, timeout_s
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> VllmServer:
        if shutil.which(self.cmd[0]) is None and not Path(self.cmd[0]).exists():
            raise RuntimeError(f"{self.cmd[0]!r} not found: install the GPU extra (pip install 'openrs[gpu]')")
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(self.devices))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting vLLM server on GPU %s: %s (log: %s)", ",".join(self.devices), " ".join(self.cmd), self.log_path)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_ignore_stop_signals)  # fmt: skip
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
                raise RuntimeError(f"vLLM server exited with code {self.proc.returncode} before answering:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/health/", timeout=5) as resp:
                    if resp.status == 200:
                        log.info("vLLM server answers at %s", self.url)
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"vLLM server did not answer at {self.url}/health/ within {self.timeout_s:.0f} s (hardware.vllm_server_timeout_s); log: {self.log_path}")
            time.sleep(1.0)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        log.info("stopping vLLM server (pid %d)", self.proc.pid)
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def weights_digest(model: Any) -> str:
    """SHA-256 over the model's parameters in name order: equal on every rank of a healthy run."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class _PreemptRelay:
    """In the launcher: on the preemption signal, tell the ranks (stop file), then chain to submitit's handler."""

    def __init__(self, stop_file: Path) -> None:
        from openrs.preemption import preemption_signal

        self.stop_file, self.signum, self.requested = stop_file, preemption_signal(), False
        current = signal.getsignal(self.signum)
        self.chained: Callable[..., Any] | None = current if callable(current) else None
        signal.signal(self.signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.warning("preemption signal: asking the ranks to checkpoint and stop")
        self.requested = True
        self.stop_file.touch()

    def hand_over(self) -> None:
        if self.chained is not None:
            self.chained(self.signum, None)  # submitit: requeue, exit
        raise SystemExit(1)


def _supervise(procs: list[subprocess.Popen], poll_s: float = 0.5) -> list[int]:
    """Wait for all ranks; if one fails, kill the others (they would hang in a collective)."""
    while True:
        codes = [p.poll() for p in procs]
        if any(c not in (None, 0) for c in codes):
            for p in procs:
                if p.poll() is None:
                    p.kill()
            return [p.wait() for p in procs]
        if all(c == 0 for c in codes):
            return [0] * len(procs)
        time.sleep(poll_s)


def run_ranks(cfg: RunConfig, run_dir: Path, plan: LaunchPlan) -> dict[str, Any]:
    """Spawn the ranks (and the vLLM server), wait, check that the ranks agree, return the run summary."""
    from contextlib import nullcontext

    from openrs import resume

    launch_dir = run_dir / LAUNCH_DIR
    if launch_dir.exists():
        shutil.rmtree(launch_dir)
    launch_dir.mkdir(parents=True)
    resume.discard_incomplete(run_dir / "checkpoints")  # before any rank looks for a checkpoint
    if cfg.model.tiny is not None:  # build the tiny model once here, not N times at once in the ranks
        from openrs import models

        models.resolve_model_path(cfg.model)

    cfg = dataclasses.replace(cfg, hardware=dataclasses.replace(cfg.hardware, ddp_backend=plan.backend))
    server = nullcontext()
    if plan.vllm_devices:
        port = cfg.hardware.vllm_server_port or free_port()
        cfg.hardware.vllm_server_port = port
        server = VllmServer(
            vllm_serve_command(cfg, port), plan.vllm_devices, f"http://{cfg.hardware.vllm_server_host}:{port}",
            run_dir / "vllm-server.log", cfg.hardware.vllm_server_timeout_s,
        )  # fmt: skip
    config_path = launch_dir / "config.yaml"
    OmegaConf.save(OmegaConf.structured(cfg), config_path)
    stop_file = launch_dir / "stop"
    relay = _PreemptRelay(stop_file)
    master_port = cfg.hardware.master_port or free_port()
    with server:
        log.info("starting %d ranks (%s backend) in %s", plan.num_ranks, plan.backend, run_dir)
        procs = [
            subprocess.Popen(rank_command(config_path, run_dir), env=rank_env(plan, r, master_port, stop_file), preexec_fn=_ignore_stop_signals)  # fmt: skip
            for r in range(plan.num_ranks)
        ]
        codes = _supervise(procs)
    if any(codes):
        raise RuntimeError(f"training ranks failed with exit codes {codes}; see the log above and {run_dir}")
    if relay.requested:
        relay.hand_over()
    reports = [json.loads((launch_dir / f"rank-{r}.json").read_text()) for r in range(plan.num_ranks)]
    digests = {r["weights_digest"] for r in reports}
    if len(digests) != 1:
        raise RuntimeError(f"ranks disagree on the final weights: {[r['weights_digest'][:12] for r in reports]}")
    return json.loads((run_dir / "summary.json").read_text())


def launch(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` with the processes its hardware preset asks for."""
    from openrs.run import run_training

    plan = make_plan(cfg.hardware, [] if cfg.hardware.use_cpu else visible_gpus())
    if os.environ.get("SLURM_NNODES", "1") != "1":
        raise RuntimeError("one node per run: set hydra.launcher.nodes=1 (multi-node runs are not supported yet)")
    if plan.in_process:
        return run_training(cfg, Path(run_dir))
    return run_ranks(cfg, Path(run_dir), plan)
