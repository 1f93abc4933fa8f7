"""The GPU check without a GPU: its dry run, its no-GPU skip, the projection's arithmetic, the step-time split,
and its whole run path trained on CPU with the tiny model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from openrs.gpu_check import cli, gpus, inputs, measure, plan, projection, run
from openrs.gpu_check.gpus import GpuSpec
from openrs.gpu_check.projection import ModelCost, PhaseTimes, StepShape
from openrs.records import observe

REPO = Path(__file__).resolve().parent.parent


def _vllm_installed() -> bool:
    try:
        metadata.version("vllm")
        return True
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.slow
def test_dry_run_checks_everything_but_the_gpu_steps_and_renders_the_report(run_module, tmp_path):
    report = tmp_path / "RESULTS_gpu.md"
    proc = run_module("openrs.gpu_check", "--dry-run", "--report", str(report), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for line in (
        "config composes",
        "tokenizer builds and loads",
        "model shape",
        "GRPOConfig builds",
        "DeepSpeed config",
        "projection arithmetic",
    ):
        assert any(row.strip().startswith(line) and " PASS " in row for row in out.splitlines()), (line, out)
    assert "1,777,088,000 parameters (by hand: 1,777,088,000)" in out
    assert "151,665 entries" in out and "generation batch 36, 6 per prompt, max 1024 tokens" in out
    assert "ZeRO stage 2" in out and "result: DRY RUN OK" in out
    assert f"report: {report}" in out

    text = report.read_text()
    assert text.startswith("# GPU check: DRY RUN")
    assert "no GPU step ran" in text and "This is a projection, not a measurement." in text
    assert "| decode steps a round (longest completion) | 1,024 | 3,584 |" in text
    assert "| generation rounds a step | 1 | 4 |" in text and "| training ranks | 1 | 3 |" in text
    assert "NVIDIA A40: 149.7 TFLOPS, 696 GB/s" in text
    assert "| run finished | not run | needs a GPU |" in text
    assert "Projected hours and cost: — (dry run: nothing measured)" in text
    assert "tied embeddings False, rope_theta 10000.0, 131072 positions" in text
    if not _vllm_installed():
        assert "hardware.use_vllm=false" in text and "transformers generate() (vLLM is not installed)" in text


@pytest.mark.slow
def test_without_a_cuda_device_the_check_skips_with_one_line():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-m", "openrs.gpu_check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [cli.SKIP_LINE]


def test_skip_line_is_all_main_prints(monkeypatch, capsys):
    monkeypatch.setattr(cli, "cuda_available", lambda: False)
    assert cli.main([]) == 0
    assert capsys.readouterr().out == cli.SKIP_LINE + "\n"


def test_projection_by_hand():
    model = ModelCost(weights_bytes=100.0, kv_bytes_per_token=1.0)
    check = StepShape(
        rounds=1,
        completions_per_round=2,
        decode_steps=4,
        completion_tokens=4,
        prompt_tokens=1,
        training_ranks=1,
    )
    target = StepShape(
        rounds=2,
        completions_per_round=1,
        decode_steps=8,
        completion_tokens=8,
        prompt_tokens=1,
        training_ranks=2,
    )
    here = GpuSpec("here", bf16_tflops=300.0, bandwidth_gbs=2000.0, source="test")
    there = GpuSpec("there", bf16_tflops=100.0, bandwidth_gbs=1000.0, source="test")
    # decode bytes: check 4 x 100 + 2 sequences x (1+2+3+4 cached tokens) = 420; target 2 x (800 + (1+...+8)) = 1672
    assert projection.decode_bytes(check, model) == 420 and projection.decode_bytes(target, model) == 1672
    p = projection.project(
        PhaseTimes(generation=10, reward=0.5, loss=5, other=1),
        check,
        target,
        model,
        here,
        there,
        steps=100,
        gpus=4,
        price_per_gpu_hour=0.5,
    )
    assert p.per_step.generation == pytest.approx(10 * 1672 / 420 * 2)
    assert p.per_step.loss == pytest.approx(5 * (2 * 9 / 2) / (2 * 5) * 3)  # tokens per rank 9 vs 10, TFLOPS x3
    assert p.per_step.other == pytest.approx(1 * (1 / 2) * 2)
    assert p.per_step.reward == pytest.approx(0.5)  # 8 completion tokens per rank in both
    total = 10 * 1672 / 420 * 2 + 13.5 + 1 + 0.5
    assert p.per_step.total == pytest.approx(total)
    assert p.hours == pytest.approx(total * 100 / 3600) and p.cost_usd == pytest.approx(total * 100 / 3600 * 4 * 0.5)
    assert p.generation_floor_s == pytest.approx(1672 / 1e12)
    assert p.check_bandwidth_share == pytest.approx(420 / (10 * 2000e9))
    assert p.floor_hours == pytest.approx((total - p.per_step.generation + 1672 / 1e12) * 100 / 3600)


def test_projection_self_check_passes():
    assert len(projection.self_check()) == 5


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA H200", "NVIDIA H200 SXM"),
        ("NVIDIA H200 NVL", "NVIDIA H200 NVL"),
        ("NVIDIA A40", "NVIDIA A40"),
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
        ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
        ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM"),
        ("NVIDIA A100 80GB PCIe", "NVIDIA A100 80GB PCIe"),
        ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 40GB"),
        ("NVIDIA L40S", "NVIDIA L40S"),
        ("NVIDIA L4", "NVIDIA L4"),
        ("NVIDIA RTX A4000", None),
        ("Tesla T4", None),
    ],
)
def test_gpu_names_find_their_published_figures(name, expected):
    spec = gpus.lookup(name)
    assert (spec.name if spec else None) == expected


def test_the_target_is_rs3_as_its_preset_composes():
    cfg, shape = inputs.target_run(prompt_tokens=200)
    assert cfg.experiment == "rs3" and cfg.grpo.max_steps == 500
    assert cfg.hardware.num_gpus * cfg.hardware.price_per_gpu_hour == pytest.approx(4 * 0.44)
    assert shape == StepShape(
        rounds=4,
        completions_per_round=18,
        decode_steps=3584,
        completion_tokens=3584,
        prompt_tokens=200,
        training_ranks=3,
    )
    assert shape.completions == 72  # the paper's 3 ranks x 6 x 4


def test_check_overrides_follow_the_installed_backends():
    none = plan.Backends(vllm=None, deepspeed=None, flash_attn=None)
    assert plan.check_overrides(["max_len=2048"], none) == [
        "experiment=gpu_check",
        "hardware.use_vllm=false",
        "hardware.deepspeed=null",
        "max_len=2048",
    ]
    both = plan.Backends(vllm="0.11", deepspeed="0.19.8", flash_attn=None)
    cfg = plan.compose_run(plan.check_overrides([], both))
    assert cfg.hardware.use_vllm and cfg.hardware.vllm_mode.value == "colocate"
    assert cfg.hardware.deepspeed == "deepspeed/zero2_offload.json"  # a40x1's, until choose_layout decides
    assert plan.check_overrides(["x=1"], both, ["hardware.deepspeed=deepspeed/zero2.json"])[-2:] == [
        "hardware.deepspeed=deepspeed/zero2.json",
        "x=1",
    ]  # the user's own come after the chosen layout, so they win
    assert plan.completions_per_step(cfg) == 36 and plan.rounds_per_step(cfg) == 1
    assert cfg.grpo.num_generations == 6 and cfg.grpo.max_completion_length >= 1024 and cfg.hardware.bf16
    assert cfg.model.gradient_checkpointing and cfg.model.tiny.hidden_size == 1536


def test_hand_count_of_qwen2_parameters_matches_a_built_model():
    from openrs.config import TinyModelConfig
    from openrs.models.tiny import build_tiny_model

    cfg = TinyModelConfig(tie_word_embeddings=False, model_vocab_size=600, num_attention_heads=4, num_key_value_heads=2)
    model = build_tiny_model(cfg, 512, 2, 0, 1, device="meta")
    assert sum(p.numel() for p in model.parameters()) == plan.qwen2_params(96, 2, 4, 2, 256, 600, tied=False)


def test_step_figures_flag_non_finite_losses():
    records = [
        {"step": 1, "step_time": 2.0, "loss": 0.1, "grad_norm": 1.0, "completions/mean_length": 10.0},
        {"step": 2, "step_time": 2.0, "loss": None, "grad_norm": 1.0, "completions/mean_length": 10.0},
        {"step": 2, "train_runtime": 9.0},
    ]
    steps = measure.step_figures(records, completions_per_step=6, rounds_per_step=1)
    assert [s.finite for s in steps] == [True, False]
    assert steps[0].completion_tokens == 60


@pytest.mark.slow
@pytest.mark.parametrize("deepspeed", ["null", "deepspeed/zero2.json"])
def test_the_check_path_trains_the_tiny_model_on_cpu(tmp_path, monkeypatch, deepspeed):
    """run.gpu_run end to end on CPU, in process or (ZeRO-2) in a spawned rank: launch, metrics, weights, report."""
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")  # the spawned rank inherits it
    report, run_dir = tmp_path / "report.md", tmp_path / "run"
    args = cli.parse_args(
        [
            "--report",
            str(report),
            "--run-dir",
            str(run_dir),
            "--keep",
            "--gpu-tflops",
            "100",
            "--gpu-bandwidth-gbs",
            "1000",
            "model=tiny",
            "hardware=cpu",
            f"hardware.deepspeed={deepspeed}",
            "hardware.per_device_train_batch_size=6",
            "max_len=8",
            "grpo.max_steps=2",
        ]
    )
    assert run.gpu_run(args) == 0, report.read_text() if report.exists() else "no report"
    assert (run_dir / ".launch" / "rank-0.json").exists() == (deepspeed != "null")
    text = report.read_text()
    assert text.startswith("# GPU check: PASS")
    for name in ("run finished", "reached max_steps", "losses finite", "weights moved", "weights finite"):
        assert f"| {name} | PASS |" in text, name
    assert "| 1 | " in text and "| 2 | " in text and "**Projected: " in text
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in records if "step_time" in r]
    assert len(timed) == 2
    for rec in timed:
        assert rec[observe.GENERATION_KEY] > 0 and rec[observe.REWARD_KEY] >= 0
        assert rec[observe.GENERATION_KEY] + rec[observe.REWARD_KEY] <= rec["step_time"]
    assert not list((run_dir / "checkpoints").glob("checkpoint-*"))  # save_strategy "no"
    assert math.isfinite(float(text.split("**Projected: ")[1].split(" h")[0].replace(",", "")))
