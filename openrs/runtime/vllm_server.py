"""TRL's vLLM server as a child of the launcher: its command, its ports, its health, its death.

Every port a job uses is chosen free per job unless the user fixed it (several jobs may share a node), and the
server that answers on the HTTP port is checked to be this job's own process (or one of its children): a 200
from another job's server on a reused port would otherwise pass the health check and let this job's ranks push
weights into the other job's server. While the ranks train, the launcher polls :meth:`VllmServer.exit_code`,
so a server that dies ends the run within seconds, with the tail of its log.

The server serves the files the ranks load (a locally built model's directory, not its label), samples with the
run's seed, is reached without any HTTP proxy the environment names, and outlives the SIGTERM that SLURM sends every
process of a job it preempts (``sigterm_guard/``), so the launcher can still let the ranks checkpoint; SIGINT stops
it.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from openrs.config import RunConfig
from openrs.errors import RunError
from openrs.procpool.procs import die_with_parent, ignore_stop_signals
from openrs.records.run_dir import RunDir
from openrs.training.grpo_config import vllm_dtype, vllm_max_model_length

log = logging.getLogger(__name__)

# Holds the sitecustomize that keeps SIGTERM ignored in every process of the server (vLLM installs its own handler).
SIGTERM_GUARD = Path(__file__).resolve().parent / "sigterm_guard"


def free_port(taken: set[int] | None = None) -> int:
    """A TCP port nothing listens on right now, other than the ones in ``taken``."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in (taken or set()):
            return port


def vllm_serve_command(cfg: RunConfig, port: int, model_path: str) -> list[str]:
    """``trl vllm-serve`` for the policy model, started from this interpreter (the ranks' environment).

    ``model_path`` is what the ranks load (openrs.training.warmstart.prepare_model): a hub id, or the directory a
    locally built model lives in. ``--seed`` is not one of TRL's flags; TRL passes it on to ``vllm serve``.
    """
    hw, model = cfg.hardware, cfg.model
    options = {
        "--model": model_path,
        "--tensor_parallel_size": str(max(1, hw.vllm_gpus)),
        "--gpu_memory_utilization": str(hw.vllm_gpu_memory_utilization),
        "--dtype": vllm_dtype(cfg),
        "--host": hw.vllm_server_host,
        "--port": str(port),
        "--max_model_len": str(vllm_max_model_length(cfg)),
    }
    if model.revision and model_path == model.name_or_path:  # a local directory has no revisions
        options["--revision"] = model.revision
    if hw.vllm_enforce_eager:
        options["--enforce_eager"] = "true"
    if model.trust_remote_code:
        options["--trust_remote_code"] = "true"
    options["--seed"] = str(cfg.seed)
    return [sys.executable, "-m", "trl.scripts.vllm_serve", *(x for pair in options.items() for x in pair)]


def no_proxy_env(env: dict[str, str], *hosts: str) -> dict[str, str]:
    """``env`` with ``hosts`` (and loopback) added to NO_PROXY/no_proxy: an inherited ``http_proxy`` (cluster login
    nodes often set one, and jobs copy it) must not route the job's own server traffic through a proxy."""
    wanted = ["127.0.0.1", "localhost", *hosts]
    for key in ("NO_PROXY", "no_proxy"):
        have = [h for h in env.get(key, "").split(",") if h]
        env[key] = ",".join(have + [h for h in wanted if h not in have])
    return env


def server_env(cfg: RunConfig, devices: tuple[str, ...]) -> dict[str, str]:
    """The server's environment: its GPUs (or, on CPU, its KV cache size), the SIGTERM guard, no proxy."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    if cfg.hardware.use_cpu:
        # vLLM's CPU backend reads gpu_memory_utilization as a share of the host's memory; a fixed KV cache instead.
        env["VLLM_CPU_KVCACHE_SPACE"] = str(cfg.hardware.vllm_cpu_kv_cache_gb)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # it shares the cores with the ranks (ranks.rank_env)
    env["PYTHONPATH"] = os.pathsep.join([str(SIGTERM_GUARD), *filter(None, [env.get("PYTHONPATH")])])
    return no_proxy_env(env, cfg.hardware.vllm_server_host)


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


class LaunchPlanLike(Protocol):
    """What the server needs of the launcher's plan (openrs.runtime.launch.LaunchPlan)."""

    server: bool
    vllm_devices: tuple[str, ...]


class ServerStartStopped(RunError):
    """A preemption arrived while the server loaded: nothing trained, nothing to save."""


def _health(url: str) -> bool:
    """Whether ``url`` answers 200, asked directly (an HTTP proxy of the environment is never used)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


class VllmServer:
    """The server process: started, awaited until ``/health`` answers from it, watched, stopped."""

    def __init__(
        self,
        cmd: list[str],
        env: dict[str, str],
        host: str,
        port: int,
        log_path: Path,
        timeout_s: float,
        stop_wanted: Callable[[], bool] = lambda: False,
    ) -> None:
        """``stop_wanted``: asked while the server loads; True (a preemption came first) stops waiting for it."""
        self.cmd, self.env, self.host, self.port = cmd, env, host, port
        self.log_path, self.timeout_s, self.stop_wanted = log_path, timeout_s, stop_wanted
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> VllmServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        where = f"GPU {self.env['CUDA_VISIBLE_DEVICES']}" if self.env.get("CUDA_VISIBLE_DEVICES") else "CPU"
        log.info(
            "starting vLLM server on %s, port %d: %s (log: %s)", where, self.port, " ".join(self.cmd), self.log_path
        )
        with open(self.log_path, "ab") as out:
            try:
                self.proc = subprocess.Popen(
                    self.cmd,
                    env=self.env,
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
                raise RunError(
                    f"the vLLM server exited with code {self.proc.returncode} before answering; the last lines of "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            if _health(f"{self.url}/health"):
                owners = listening_pids(self.port)
                if owners & process_tree(self.proc.pid):
                    log.info("vLLM server answers at %s (pid %d)", self.url, self.proc.pid)
                    return
                raise RunError(
                    f"port {self.port} answers /health, but from process(es) {sorted(owners) or '?'}, not this job's "
                    f"server (pid {self.proc.pid}): another job uses the port; leave hardware.vllm_server_port=0 so "
                    "each job picks a free one"
                )
            if self.stop_wanted():
                raise ServerStartStopped(f"stopped while the vLLM server was loading (pid {self.proc.pid})")
            if time.monotonic() > deadline:
                raise RunError(
                    f"the vLLM server did not answer at {self.url}/health within {self.timeout_s:.0f} s "
                    f"(hardware.vllm_server_timeout_s); log: {self.log_path}"
                )
            time.sleep(1.0)

    def stop(self) -> None:
        """SIGINT (vLLM shuts its engine processes down), then SIGKILL to the whole group after 30 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            log.info("stopping vLLM server (pid %d)", self.proc.pid)
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:  # engine processes left behind by a server that died (they do not die with it)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _child_setup() -> None:
    """In the server: USR2 stays ignored (vLLM never handles it), TERM is kept ignored by the guard, and the
    server dies with the launcher."""
    ignore_stop_signals()
    die_with_parent()


def server_for(
    cfg: RunConfig, plan: LaunchPlanLike, paths: RunDir, stop_wanted: Callable[[], bool] = lambda: False
) -> VllmServer | None:
    """The vLLM server on the plan's server GPUs (or CPU cores), serving the files the ranks load; None when
    colocated or without vLLM. ``stop_wanted`` ends the wait for it (a preemption came while it loaded)."""
    if not plan.server:
        return None
    from openrs.training.warmstart import prepare_model

    hw = cfg.hardware
    model_path = prepare_model(cfg.model)
    if hw.use_cpu:  # vLLM on CPU reloads no tied lm_head: it serves an untied copy (openrs.training.vllm_cpu)
        from openrs.training.vllm_cpu import untied_copy

        model_path = untied_copy(model_path)
    return VllmServer(
        vllm_serve_command(cfg, hw.vllm_server_port, model_path),
        server_env(cfg, plan.vllm_devices),
        hw.vllm_server_host,
        hw.vllm_server_port,
        paths.vllm_log,
        hw.vllm_server_timeout_s,
        stop_wanted,
    )


def server_failure(server: VllmServer, run_dir: Path) -> RunError:
    from openrs.training import checkpoints

    newest = checkpoints.latest_complete_checkpoint(RunDir(run_dir).checkpoints)
    return RunError(
        f"the vLLM server exited with code {server.exit_code()} while the ranks trained; they were stopped. "
        f"Newest complete checkpoint: {newest or 'none yet'} (the next start resumes there). "
        f"Last lines of {server.log_path}:\n{server.log_tail()}"
    )
