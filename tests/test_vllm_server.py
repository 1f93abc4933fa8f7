"""The vLLM server a run starts: its command, free ports per job, a health check that knows its own server,
and a server that dies mid-run ending the run within seconds (stand-in servers; vLLM needs a GPU)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from openrs.config import compose, to_run_config
from openrs.runtime.launch import LaunchPlan, pick_ports, run_ranks
from openrs.runtime.vllm_server import VllmServer, free_port, vllm_serve_command

FAKE = str(Path(__file__).resolve().parent / "fixtures" / "fake_vllm_server.py")


def run_config(*overrides: str):
    return to_run_config(compose(list(overrides)))


def fake(port: int, *args: str) -> list[str]:
    return [sys.executable, FAKE, "--port", str(port), *args]


def server(tmp_path: Path, port: int, *args: str, timeout: float = 30) -> VllmServer:
    return VllmServer(fake(port, *args), ("3",), "127.0.0.1", port, tmp_path / f"vllm-{port}.log", timeout)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def test_serve_command_is_trls_server_from_this_interpreter():
    cmd = vllm_serve_command(run_config("experiment=rs2"), port=8123)
    assert cmd[:3] == [sys.executable, "-m", "trl.scripts.vllm_serve"]  # no `trl` from PATH: the ranks' venv
    args = dict(zip(cmd[3::2], cmd[4::2], strict=True))
    assert args["--model"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" and args["--port"] == "8123"
    assert args["--gpu_memory_utilization"] == "0.7" and args["--max_model_len"] == str(512 + 3584)
    assert "--enforce_eager" not in args  # the seed ran vLLM with CUDA graphs (docs/PARITY.md)
    eager = vllm_serve_command(run_config("experiment=rs2", "hardware.vllm_enforce_eager=true"), port=1)
    assert eager[eager.index("--enforce_eager") + 1] == "true"
    from trl.scripts.vllm_serve import ScriptArguments  # every flag is one TRL's server accepts

    assert {a[2:] for a in cmd[3::2]} <= set(ScriptArguments.__dataclass_fields__)


def test_each_job_gets_its_own_free_ports_unless_fixed():
    hw = run_config("experiment=rs2").hardware
    assert (hw.master_port, hw.vllm_server_port, hw.vllm_group_port) == (0, 0, 0)
    a, b = pick_ports(hw, server=True), pick_ports(hw, server=True)
    ports_a = {a.master_port, a.vllm_server_port, a.vllm_group_port}
    assert len(ports_a) == 3 and 0 not in ports_a  # three distinct ports, none the shared defaults
    assert (a.vllm_server_port, a.vllm_group_port) != (b.vllm_server_port, b.vllm_group_port)
    fixed = pick_ports(run_config("experiment=rs2", "hardware.vllm_server_port=8000").hardware, server=True)
    assert fixed.vllm_server_port == 8000 and 8000 not in (fixed.master_port, fixed.vllm_group_port)
    assert pick_ports(hw, server=False).vllm_server_port == 0  # no server, no server ports


def test_server_is_awaited_on_health_then_stopped(tmp_path):
    port = free_port()
    srv = server(tmp_path, port, "--delay", "1.5")
    start = time.monotonic()
    with srv:
        assert time.monotonic() - start >= 1.5  # waited for the model to "load"
        assert srv.exit_code() is None and get(f"{srv.url}/health") == ""
    assert srv.exit_code() is not None, "server still running after the run"


def test_two_jobs_on_one_node_each_talk_to_their_own_server(tmp_path):
    hw = run_config("experiment=rs2").hardware
    a, b = pick_ports(hw, server=True), pick_ports(hw, server=True)
    with (
        server(tmp_path, a.vllm_server_port, "--token", "job-a") as sa,
        server(tmp_path, b.vllm_server_port, "--token", "job-b") as sb,
    ):
        assert get(f"{sa.url}/id") == "job-a" and get(f"{sb.url}/id") == "job-b"
        assert sa.proc.pid != sb.proc.pid


def test_a_port_answered_by_another_jobs_server_is_refused(tmp_path):
    """Job B reuses job A's port: A's server answers /health first, but it is not B's process."""
    port = free_port()
    other = subprocess.Popen(fake(port, "--token", "job-a"), stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "stand-in server did not come up"
                time.sleep(0.2)
        mine = server(tmp_path, port, "--delay", "30")  # still loading when A's answer arrives
        with pytest.raises(
            RuntimeError, match=rf"port {port} answers /health, but from process.*not this job's server"
        ):
            with mine:
                pass
        assert mine.exit_code() is not None  # ours was stopped on the way out
    finally:
        other.kill()
        other.wait()


def test_server_that_exits_before_answering_fails_with_its_log(tmp_path):
    script = tmp_path / "crash.py"
    script.write_text("import sys\nprint('CUDA out of memory (fake)')\nsys.exit(3)\n")
    srv = VllmServer([sys.executable, str(script)], ("3",), "127.0.0.1", free_port(), tmp_path / "v.log", 30)
    with pytest.raises(RuntimeError, match="(?s)exited with code 3.*CUDA out of memory"), srv:
        pass


def test_real_command_without_vllm_fails_fast_naming_it(tmp_path):
    """TRL's server needs vLLM (a GPU extra); without it the start fails at once, the log tail says why."""
    pytest.importorskip("trl.scripts.vllm_serve")
    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    port = free_port()
    cfg = run_config("experiment=rs2")
    srv = VllmServer(vllm_serve_command(cfg, port), ("0",), "127.0.0.1", port, tmp_path / "v.log", 120)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="(?s)exited with code .*vllm"), srv:
        pass
    assert time.monotonic() - start < 60


@pytest.mark.slow
def test_server_dying_mid_run_ends_the_run_within_seconds(tmp_path, monkeypatch):
    """The ranks train (CPU) beside a stand-in server that crashes once the first checkpoint is complete: the
    launcher stops the ranks within seconds, fails with the server's log tail, and the checkpoint stays intact."""
    import psutil

    from openrs.runtime import launch
    from openrs.training import checkpoints

    run_dir = tmp_path / "run"
    monkeypatch.setattr(
        launch,
        "vllm_serve_command",
        lambda cfg, port: fake(
            port, "--die-when", str(run_dir / "checkpoints" / "checkpoint-*" / "COMPLETE"), "--exit-code", "7"
        ),
    )
    cfg = run_config("experiment=smoke", "grpo.max_steps=5000", "grpo.save_steps=3")
    plan = LaunchPlan(num_ranks=1, train_devices=(), vllm_devices=("0",), backend="gloo")
    with pytest.raises(RuntimeError) as info:
        run_ranks(cfg, run_dir, plan)
    ended = time.time()
    message = str(info.value)
    assert "vLLM server exited with code 7 while the ranks trained" in message
    died_at = float(message.rsplit("dying at ", 1)[1].split()[0])  # the stand-in's last log line
    assert ended - died_at < 5, f"the run ended {ended - died_at:.1f} s after the server died"
    newest = checkpoints.latest_complete_checkpoint(run_dir / "checkpoints")
    assert newest is not None and str(newest) in message
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(newest)  # intact: it loads

    def ours(p: psutil.Process) -> bool:
        try:
            cmd = p.cmdline()
            return p.status() != psutil.STATUS_ZOMBIE and ("openrs.runtime.worker" in cmd or FAKE in cmd)
        except psutil.Error:
            return False

    left = [p.pid for p in psutil.Process().children(recursive=True) if ours(p)]
    assert not left, f"processes left behind: {left}"
