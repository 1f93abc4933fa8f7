"""The memory plan: its arithmetic (pinned to the issue's A40 count and to DeepSpeed's own estimator), the GPU
check's choice of layout by GPU size, and the launch preflight that refuses a run whose plan cannot fit."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from openrs.config.memory import Layout, ModelShape, plan_memory

# DeepSeek-R1-Distill-Qwen-1.5B: 1,777,088,000 parameters (3.55 GB in bf16), 28 layers, hidden 1536, MLP 8960
R1_1_5B = ModelShape(params=1_777_088_000, layers=28, hidden=1536, intermediate=8960)
ROOT = Path(__file__).resolve().parent.parent


def test_one_a40_with_adamw_on_the_gpu_does_not_fit_and_offload_does():
    on_gpu = plan_memory(R1_1_5B, 48, Layout(ranks=1, vllm_share=0.3))
    p = on_gpu.parts
    assert p["weights"] == pytest.approx(3.55, abs=0.01) and p["gradients"] == pytest.approx(3.55, abs=0.01)
    assert p["fp32 masters"] == pytest.approx(7.1, abs=0.02) and p["AdamW states"] == pytest.approx(14.2, abs=0.05)
    assert p["fp32 gradients"] == pytest.approx(7.1, abs=0.02) and p["reference model"] == pytest.approx(3.55, abs=0.01)
    assert p["colocated vLLM"] == pytest.approx(14.4)
    assert on_gpu.total_gb > 48 and not on_gpu.fits
    assert on_gpu.knobs()[0].startswith("hardware.deepspeed=deepspeed/zero2_offload.json")
    offload = plan_memory(R1_1_5B, 48, Layout(ranks=1, vllm_share=0.3, offload_optimizer=True))
    assert offload.fits and offload.total_gb < 48
    assert offload.parts["AdamW states"] == offload.parts["fp32 masters"] == offload.parts["gradients"] == 0
    assert plan_memory(R1_1_5B, 141, Layout(ranks=1, vllm_share=0.3)).fits  # an H200 keeps AdamW on the GPU


@pytest.mark.parametrize("ranks", [1, 3, 4])
@pytest.mark.parametrize("offload", [False, True])
def test_model_states_agree_with_deepspeeds_estimator(ranks, offload):
    estimator = pytest.importorskip("deepspeed.runtime.zero.stage_1_and_2").estimate_zero2_model_states_mem_needs
    _, gpu_bytes = estimator(R1_1_5B.params, num_gpus_per_node=ranks, cpu_offload=offload)
    p = plan_memory(R1_1_5B, 48, Layout(ranks=ranks, offload_optimizer=offload)).parts
    states = ("weights", "gradients", "fp32 masters", "AdamW states", "fp32 gradients")
    assert sum(p[name] for name in states) == pytest.approx(gpu_bytes / 1e9, rel=1e-6)


def test_the_paper_presets_fit_an_a40_and_a_server_frees_the_training_gpus():
    from openrs.config import compose, to_run_config
    from openrs.runtime.memory_check import run_memory_plan

    for overrides in (
        ["experiment=rs3"],
        ["experiment=rs3", "hardware=a40x4_colocate"],
        ["experiment=rs3", "hardware=a40x1"],
    ):
        memory = run_memory_plan(to_run_config(compose(overrides)), 48, R1_1_5B)
        assert memory.fits, (overrides, memory.describe())
    server = run_memory_plan(to_run_config(compose(["experiment=rs3"])), 48, R1_1_5B)
    assert server.parts["colocated vLLM"] == 0 and server.layout.ranks == 3
    assert server.parts["AdamW states"] == pytest.approx(14.2 / 3, abs=0.02)
    lora = run_memory_plan(to_run_config(compose(["experiment=rs3", "peft=lora"])), 48, R1_1_5B)
    assert lora.parts["AdamW states"] == lora.parts["reference model"] == 0


def test_the_shape_is_read_from_the_config_alone(tmp_path, monkeypatch):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from openrs.config import compose, to_run_config
    from openrs.errors import UsageError
    from openrs.models.shape import model_shape

    assert model_shape(to_run_config(compose(["experiment=gpu_check"])).model) == R1_1_5B
    config = Qwen2Config(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True,
    )  # fmt: skip
    config.save_pretrained(tmp_path)  # a config.json and no weights
    cfg = to_run_config(compose(["model=r1_distill_qwen_1_5b", f"model.name_or_path={tmp_path}"])).model
    shape = model_shape(cfg)
    assert shape == ModelShape(Qwen2ForCausalLM(config).num_parameters(), 3, 64, 128)
    missing = to_run_config(compose(["model=r1_distill_qwen_1_5b", f"model.name_or_path={tmp_path / 'nothing'}"])).model
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match="model.name_or_path=.*config.json could not be read"):
        model_shape(missing)


def dry_run(gb: float, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "openrs.gpu_check", "--dry-run", "--gpu-memory-gb", str(gb), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.mark.parametrize(
    "gb, layout", [(48, "optimizer offload (AdamW in host memory)"), (141, "AdamW on the GPU")]
)  # fmt: skip
def test_the_gpu_check_chooses_the_layout_that_fits_the_gpu(gb, layout, tmp_path):
    done = dry_run(gb, "--report", str(tmp_path / "report.md"))
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(s for s in done.stdout.splitlines() if "memory plan" in s)
    assert "PASS" in line and f"a GPU of {gb} GB: {layout}" in line
    estimate = float(line.split("estimate ")[1].split(" GB")[0])
    assert estimate < gb * 0.95
    assert ("zero2_offload.json" in done.stdout) == (gb == 48)
    assert "memory plan" in (tmp_path / "report.md").read_text()


def test_the_gpu_check_chooses_adamw_on_an_80_gb_gpu_and_fails_a_gpu_nothing_fits(tmp_path):
    from openrs.gpu_check import plan

    backends = plan.Backends("0.31.0", "0.19.8", None)
    choice = plan.choose_layout([], backends, 80, R1_1_5B)
    assert choice.overrides == ["hardware.deepspeed=deepspeed/zero2.json"] and choice.memory.fits
    done = dry_run(12, "--report", str(tmp_path / "report.md"))
    assert done.returncode == 1
    line = next(s for s in done.stdout.splitlines() if "memory plan" in s)
    assert "FAIL" in line and "hardware.vllm_gpu_memory_utilization" in line


def fake_nvidia_smi(bin_dir: Path, mib: int) -> None:
    """An nvidia-smi that reports one GPU of ``mib`` MiB (the memory query openrs makes, whatever fields)."""
    bin_dir.mkdir()
    tool = bin_dir / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\necho '0, GPU-fake-0, {mib}'\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


def test_a_run_whose_plan_cannot_fit_is_refused_before_anything_loads(tmp_path):
    fake_nvidia_smi(tmp_path / "bin", 46068)  # an A40
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}", CUDA_VISIBLE_DEVICES="0")
    env["OPENRS_CACHE"] = str(tmp_path / "cache")
    cmd = [
        sys.executable, "-m", "openrs.train", "experiment=gpu_check", "hardware.deepspeed=deepspeed/zero2.json",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in done.stderr
    assert err[0].startswith("openrs.train: error: hardware=a40x1: a training rank needs an estimated")
    assert "AdamW states 14.2" in err[0] and "hardware.deepspeed=deepspeed/zero2_offload.json" in err[0]
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()  # no run dir, no model built


def test_the_preflight_passes_a_plan_that_fits_and_can_be_turned_off(tmp_path, monkeypatch):
    from openrs.config import compose, to_run_config
    from openrs.runtime.memory_check import require_memory_fits
    from openrs.runtime.placement import LaunchPlan

    fake_nvidia_smi(tmp_path / "bin", 46068)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    gpu = LaunchPlan(1, ("0",), (), "nccl", distributed=True)
    memory = require_memory_fits(to_run_config(compose(["experiment=gpu_check"])), gpu)
    assert memory is not None and memory.fits and memory.layout.offload_optimizer
    assert memory.device_gb == pytest.approx(46068 * 2**20 / 1e9)
    off = to_run_config(
        compose(["experiment=gpu_check", "hardware.deepspeed=deepspeed/zero2.json", "hardware.check_memory=false"])
    )
    assert require_memory_fits(off, gpu) is None
    assert require_memory_fits(off, LaunchPlan(1, (), (), "gloo")) is None  # CPU: nothing to plan
