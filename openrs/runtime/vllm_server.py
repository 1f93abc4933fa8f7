"""TRL's vLLM server as a child of the launcher: its command, its ports, its health, its death.

Every port a job uses is chosen free per job unless the user fixed it (several jobs may share a node), and the
server that answers on the HTTP port is checked to be this job's own process (or one of its children): a 200
from another job's server on a reused port would otherwise pass the health check and let this job's ranks push
weights into the other job's server. While the ranks train, the launcher polls :meth:`VllmServer.exit_code`,
so a server that dies ends the run within seconds, with the tail of its log.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from openrs.config import RunConfig
from openrs.config.base import value_of
from openrs.procpool.procs import die_with_parent, ignore_stop_signals
from openrs.training.grpo_config import vllm_max_model_length

log = logging.getLogger(__name__)


def free_port(taken: set[int] | None = None) -> int:
    """A TCP port nothing listens on right now, other than the ones in ``taken``."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in (taken or set()):
            return port


def vllm_serve_command(cfg: RunConfig, port: int) -> list[str]:
    """``trl vllm-serve`` for the policy model, started from this interpreter (the ranks' environment)."""
    hw, model = cfg.hardware, cfg.model
    cmd = [
        sys.executable,
        "-m",
        "trl.scripts.vllm_serve",
        "--model",
        model.name_or_path,
        "--tensor_parallel_size",
        str(max(1, hw.vllm_gpus)),
        "--gpu_memory_utilization",
        str(hw.vllm_gpu_memory_utilization),
        "--dtype",
        str(value_of(model.dtype)),
        "--host",
        hw.vllm_server_host,
        "--port",
        str(port),
        "--max_model_len",
        str(vllm_max_model_length(cfg)),
    ]
    if model.revision:
        cmd += ["--revision", model.revision]
    if hw.vllm_enforce_eager:
        cmd += ["--enforce_eager", "true"]
    if model.trust_remote_code:
        cmd += ["--trust_remote_code", "true"]
    return cmd


def listening_pids(port: int) -> set[int]:
    """Process ids with a TCP socket listening on ``port`` (that this user may inspect)."""
    import psutil

    pids = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            pids.add(conn.pid)
    return pids


def process_tree(pid: int) -> set[int]:
    """``pid`` and all its descendants still alive."""
    import psutil

    try:
        root = psutil.Process(pid)
        return {pid, *(c.pid for c in root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


class VllmServer:
    """The server process: started, awaited until ``/health`` answers from it, watched, stopped."""

    def __init__(
        self, cmd: list[str], devices: tuple[str, ...], host: str, port: int, log_path: Path, timeout_s: float
    ) -> None:
        self.cmd, self.devices, self.host, self.port = cmd, devices, host, port
        self.log_path, self.timeout_s = log_path, timeout_s
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> VllmServer:
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(self.devices), PYTHONUNBUFFERED="1")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.info(
            "starting vLLM server on GPU %s, port %d: %s (log: %s)",
            ",".join(self.devices),
            self.port,
            " ".join(self.cmd),
            self.log_path,
        )
        with open(self.log_path, "ab") as out:
            try:
                self.proc = subprocess.Popen(
                    self.cmd,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_child_setup,
                )
            except FileNotFoundError as exc:
                raise RuntimeError(
                    f"cannot start the vLLM server ({exc}); install the GPU extra: pip install 'openrs[gpu]'"
                ) from None
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def exit_code(self) -> int | None:
        """The server's exit code once it has ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def wait_ready(self) -> None:
        """Poll ``/health`` until this server answers 200; fail if it exits, another process answers, or time runs out."""
        assert self.proc is not None
        deadline = time.monotonic() + self.timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"vLLM server exited with code {self.proc.returncode} before answering:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as resp:
                    ok = resp.status == 200
            except OSError:
                ok = False
            if ok:
                owners = listening_pids(self.port)
                if owners & process_tree(self.proc.pid):
                    log.info("vLLM server answers at %s (pid %d)", self.url, self.proc.pid)
                    return
                raise RuntimeError(
                    f"port {self.port} answers /health, but from process(es) {sorted(owners) or '?'}, not this job's "
                    f"server (pid {self.proc.pid}): another job uses the port; leave hardware.vllm_server_port=0 so "
                    "each job picks a free one"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"vLLM server did not answer at {self.url}/health within {self.timeout_s:.0f} s "
                    f"(hardware.vllm_server_timeout_s); log: {self.log_path}"
                )
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


def _child_setup() -> None:
    ignore_stop_signals()
    die_with_parent()
