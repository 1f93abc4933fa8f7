"""What the launcher asks of TRL's vLLM server, checked without starting one: its command (the files the ranks load,
the run's seed), free ports per job, a route to it that no HTTP proxy of the environment takes, a server that
exits before answering. The real server, on CPU, is tested in tests/test_vllm_cpu.py."""

from __future__ import annotations

import dataclasses
import http.server
import sys
import threading
import time
from pathlib import Path

import pytest

from openrs.config import compose, to_run_config
from openrs.records.run_dir import RunDir
from openrs.runtime.launch import pick_ports
from openrs.runtime.placement import LaunchPlan, make_plan
from openrs.runtime.ranks import rank_env
from openrs.runtime.vllm_server import (
    SIGTERM_GUARD,
    VllmServer,
    _health,
    free_port,
    no_proxy_env,
    server_env,
    server_for,
    vllm_serve_command,
)


def run_config(*overrides: str):
    return to_run_config(compose(list(overrides)))


def options(cmd: list[str]) -> dict[str, str]:
    return dict(zip(cmd[3::2], cmd[4::2], strict=True))


def test_serve_command_is_trls_server_from_this_interpreter():
    cmd = vllm_serve_command(run_config("experiment=rs2"), 8123, "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
    assert cmd[:3] == [sys.executable, "-m", "trl.scripts.vllm_serve"]  # no `trl` from PATH: the ranks' venv
    args = options(cmd)
    assert args["--model"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" and args["--port"] == "8123"
    assert args["--gpu_memory_utilization"] == "0.7" and args["--max_model_len"] == str(512 + 3584)
    assert args["--dtype"] == "bfloat16"
    assert "--enforce_eager" not in args  # the seed ran vLLM with CUDA graphs (docs/PARITY.md)
    eager = vllm_serve_command(run_config("experiment=rs2", "hardware.vllm_enforce_eager=true"), 1, "m")
    assert eager[eager.index("--enforce_eager") + 1] == "true"
    from trl.scripts.vllm_serve import ScriptArguments  # every flag is TRL's, but --seed, which TRL hands to vLLM

    assert {a[2:] for a in cmd[3::2]} - set(ScriptArguments.__dataclass_fields__) == {"seed"}


def test_the_server_samples_with_the_runs_seed():
    assert options(vllm_serve_command(run_config("experiment=rs2", "seed=7"), 1, "m"))["--seed"] == "7"
    assert options(vllm_serve_command(run_config("experiment=rs2"), 1, "m"))["--seed"] == "42"


def test_a_locally_built_model_is_served_from_its_files_not_its_label(tmp_path):
    """The 4-GPU layout's download-free check (experiment=gpu_check hardware=a40x4): the server gets the directory
    the ranks load, not the label `openrs/qwen2-1.5b-random`, which vLLM would look up on the hub."""
    from openrs.training.warmstart import prepare_model

    cfg = run_config("experiment=smoke", "hardware=a40x4", "grpo.num_generations=6")  # tiny: built in a second
    plan = make_plan(cfg.hardware, ["0", "1", "2", "3"])
    cfg = dataclasses.replace(cfg, hardware=pick_ports(cfg.hardware, server=True))
    server = server_for(cfg, plan, RunDir(tmp_path))
    assert server is not None
    served = options(server.cmd)["--model"]
    assert served == prepare_model(cfg.model) and Path(served, "config.json").is_file()
    assert served != cfg.model.name_or_path and "--revision" not in options(server.cmd)
    assert server.env["CUDA_VISIBLE_DEVICES"] == "3"  # the fourth GPU; the ranks have 0,1,2


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


def test_the_server_is_started_with_the_sigterm_guard_and_a_cpu_kv_cache():
    cfg = run_config("experiment=smoke", "hardware=cpu_vllm")
    env = server_env(cfg, ())
    assert env["PYTHONPATH"].split(":")[0] == str(SIGTERM_GUARD) and (SIGTERM_GUARD / "sitecustomize.py").is_file()
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1" and "CUDA_VISIBLE_DEVICES" not in env
    assert make_plan(cfg.hardware, []).server and not make_plan(cfg.hardware, []).in_process


class _Answers(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def answering_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_an_inherited_http_proxy_does_not_stand_between_the_job_and_its_server(monkeypatch, answering_port):
    """Cluster login nodes often set http_proxy, and jobs copy it: the job's own traffic to its server must not go
    there (here the proxy is a closed port, so any request through it fails at once)."""
    closed = f"http://127.0.0.1:{free_port()}"
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(key, closed)
    for key in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(key, raising=False)
    url = f"http://127.0.0.1:{answering_port}/health"
    assert _health(url)  # the launcher's health check asks directly
    import requests

    with pytest.raises(requests.ConnectionError):  # the environment as it came routes through the proxy
        requests.get(url, timeout=5)
    env = rank_env(LaunchPlan(1, (), (), "gloo", server=True), 0, 1, Path("stop"))
    for key in ("no_proxy", "NO_PROXY"):
        assert {"127.0.0.1", "localhost"} <= set(env[key].split(","))
        monkeypatch.setenv(key, env[key])
    assert requests.get(url, timeout=5).status_code == 200  # TRL's client, in a rank's environment
    assert (
        no_proxy_env({"NO_PROXY": "example.org"}, "10.1.2.3")["NO_PROXY"] == "example.org,127.0.0.1,localhost,10.1.2.3"
    )


def test_server_that_exits_before_answering_fails_with_its_log(tmp_path):
    script = tmp_path / "crash.py"
    script.write_text("import sys\nprint('CUDA out of memory (fake)')\nsys.exit(3)\n")
    port = free_port()
    srv = VllmServer([sys.executable, str(script)], {}, "127.0.0.1", port, tmp_path / "v.log", 30)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="(?s)exited with code 3.*CUDA out of memory"), srv:
        pass
    assert time.monotonic() - start < 20
