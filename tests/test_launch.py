"""The one entry point launches the right processes: GPU split, vLLM server, torch distributed ranks.

The GPU path (vLLM server + NCCL ranks) is tested through the commands and environments it builds and
a stand-in server; the same rank code runs for real on CPU with gloo: two ranks train and must agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from openrs.config import compose, to_run_config, validate_hardware
from openrs.launch import (
    LAUNCH_DIR,
    VllmServer,
    free_port,
    make_plan,
    rank_env,
    vllm_serve_command,
    weights_digest,
)

REPO = Path(__file__).resolve().parent.parent
FOUR = ["0", "1", "2", "3"]


def run_config(*overrides: str):
    return to_run_config(compose(list(overrides)))


def test_a40x4_puts_three_ranks_and_the_vllm_server_on_the_four_gpus():
    plan = make_plan(run_config("experiment=rs2").hardware, ["4", "5", "6", "7"])  # as SLURM hands them out
    assert plan.train_devices == ("4", "5", "6", "7")[:3] and plan.vllm_devices == ("7",)
    assert plan.num_ranks == 3 and plan.backend == "nccl" and not plan.in_process


def test_colocate_and_single_gpu_presets_train_on_every_gpu_without_a_server():
    plan = make_plan(run_config("experiment=rs2", "hardware=a40x4_colocate").hardware, FOUR)
    assert plan.train_devices == tuple(FOUR) and plan.vllm_devices == () and plan.num_ranks == 4
    plan = make_plan(run_config("experiment=rs2", "hardware=a40x1").hardware, ["0"])
    # One rank, but DeepSpeed (ZeRO-2 with optimizer offload) needs a torch distributed environment: spawned.
    assert plan.num_ranks == 1 and plan.distributed and not plan.in_process


def test_cpu_preset_runs_in_process_and_gloo_for_several_ranks():
    assert make_plan(run_config().hardware, []).in_process
    plan = make_plan(run_config("hardware.num_processes=2").hardware, [])
    assert plan.num_ranks == 2 and plan.backend == "gloo" and plan.train_devices == ()


@pytest.mark.parametrize(
    ("overrides", "gpus", "needle"),
    [
        (["experiment=rs2"], ["0", "1"], "needs 4 GPUs"),
        (["experiment=rs2", "hardware.num_gpus=3"], FOUR, "hardware.num_gpus=3"),
        (["experiment=rs2", "hardware.vllm_gpus=0"], FOUR, "hardware.vllm_gpus >= 1"),
        (["hardware.num_processes=0"], [], "hardware.num_processes=0"),
        (["hardware.use_vllm=true"], [], "hardware.use_vllm=true needs GPUs"),
        (["experiment=rs2", "hardware.ddp_backend=mpi"], FOUR, "choose null, nccl or gloo"),
    ],
)
def test_impossible_layouts_fail_early_naming_the_field(overrides, gpus, needle):
    with pytest.raises((ValueError, RuntimeError), match=needle.replace("(", r"\(")):
        make_plan(run_config(*overrides).hardware, gpus)


def test_hardware_presets_state_gpus_and_price():
    costs = {}
    for name in ("a40x4", "a40x4_colocate", "a40x1", "cpu"):
        hw = run_config("experiment=rs2", f"hardware={name}").hardware
        validate_hardware(hw)
        costs[name] = hw.num_gpus * hw.price_per_gpu_hour * 24
    assert costs["a40x4"] == pytest.approx(42.24)  # the paper's ~$42 for 4 A40s x 24 h
    assert costs["a40x4_colocate"] == costs["a40x4"] and costs["a40x1"] == pytest.approx(10.56)
    # Every preset keeps the paper's 72 completions per optimizer step.
    for name in ("a40x4", "a40x4_colocate", "a40x1"):
        hw = run_config("experiment=rs2", f"hardware={name}").hardware
        assert hw.num_processes * hw.per_device_train_batch_size * hw.gradient_accumulation_steps == 72


def test_vllm_serve_command_carries_model_memory_length_eager_and_port():
    cfg = run_config("experiment=rs2")
    cmd = vllm_serve_command(cfg, port=8123)
    assert cmd[:2] == ["trl", "vllm-serve"]
    args = dict(zip(cmd[2::2], cmd[3::2], strict=False))
    assert args["--model"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    assert args["--gpu_memory_utilization"] == "0.7" and args["--max_model_len"] == str(512 + 3584)
    assert "--enforce_eager" not in args  # the seed ran vLLM with CUDA graphs (docs/PARITY.md)
    assert args["--port"] == "8123" and args["--tensor_parallel_size"] == "1"
    eager = dict(zip(*[iter(vllm_serve_command(run_config("experiment=rs2", "hardware.vllm_enforce_eager=true"), 1)[2:])] * 2, strict=False))
    assert eager["--enforce_eager"] == "true"
    # Every flag is one that `trl vllm-serve` accepts.
    from trl.scripts.vllm_serve import ScriptArguments

    fields = set(ScriptArguments.__dataclass_fields__)
    assert {a[2:] for a in cmd[2::2]} <= fields


def test_rank_env_is_the_torch_distributed_environment(tmp_path):
    plan = make_plan(run_config("experiment=rs2").hardware, FOUR)
    env = rank_env(plan, 2, 29511, tmp_path / "stop")
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"]) == ("2", "2", "3")
    assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("127.0.0.1", "29511")
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2"  # the server's GPU stays out of the ranks' sight
    assert env["OPENRS_STOP_FILE"] == str(tmp_path / "stop") and "SUBMITIT_FOLDER" not in env


FAKE_SERVER = textwrap.dedent(
    """
    import http.server, sys, time
    time.sleep(float(sys.argv[2]))  # a server that takes a while to load its model
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path.rstrip("/") == "/health" else 404)
            self.end_headers()
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """
)


def test_vllm_server_is_awaited_then_stopped(tmp_path):
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    port = free_port()
    server = VllmServer([sys.executable, str(script), str(port), "1.5"], ("3",), f"http://127.0.0.1:{port}", tmp_path / "vllm.log", 30)
    with server:
        assert server.proc is not None and server.proc.poll() is None
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5) as resp:
            assert resp.status == 200
    assert server.proc.poll() is not None, "server still running after the run"


def test_vllm_server_that_dies_fails_the_launch_with_its_log(tmp_path):
    script = tmp_path / "crash.py"
    script.write_text("import sys\nprint('CUDA out of memory (fake)')\nsys.exit(3)\n")
    server = VllmServer([sys.executable, str(script)], ("3",), f"http://127.0.0.1:{free_port()}", tmp_path / "vllm.log", 30)
    with pytest.raises(RuntimeError, match="(?s)exited with code 3.*CUDA out of memory"), server:
        pass


def test_missing_trl_cli_is_a_clear_error(tmp_path):
    server = VllmServer(["no-such-trl-binary", "vllm-serve"], ("3",), "http://127.0.0.1:1", tmp_path / "v.log", 1)
    with pytest.raises(RuntimeError, match="openrs\\[gpu\\]"), server:
        pass


@pytest.mark.slow
def test_two_gloo_ranks_train_together_and_agree_on_the_weights(tmp_path):
    """The multi-rank path on CPU: 2 ranks, one run dir, rank 0 writes; both end with the same weights."""
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "openrs.train", "hardware.num_processes=2", "grpo.max_steps=6",
         "grpo.save_steps=3", f"hydra.run.dir={run_dir}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    reports = [json.loads((run_dir / LAUNCH_DIR / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world_size"], r["global_step"]) for r in reports] == [(0, 2, 6), (1, 2, 6)]
    assert reports[0]["weights_digest"] == reports[1]["weights_digest"]

    from transformers import AutoModelForCausalLM

    from openrs import models

    final = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    assert weights_digest(final) == reports[0]["weights_digest"], "rank 0 saved other weights than it trained"
    init = models.load_model(run_config().model)
    assert weights_digest(init) != reports[0]["weights_digest"], "the ranks did not train"
    # Rank 0 alone wrote the run's records: one line per step, one TensorBoard file, both checkpoints.
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [s for s in steps if s] == [1, 2, 3, 4, 5, 6, 6]  # 6 steps + the final train summary
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/reward")] == [1, 2, 3, 4, 5, 6]
    assert all((run_dir / "checkpoints" / f"checkpoint-{s}" / "COMPLETE").exists() for s in (3, 6))
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 6
