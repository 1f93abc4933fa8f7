"""Training really trains: the smoke experiment learns, LoRA moves only adapters, runs resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openrs.config import compose, to_run_config
from openrs.records.metrics_log import read_metrics

pytestmark = pytest.mark.slow


def window_mean(records: list[dict], key: str, sl: slice) -> float:
    values = [r[key] for r in records if key in r][sl]
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, openrs_cache) -> tuple[Path, object]:
    """The default command, as the README runs it, into a fresh run dir."""
    import subprocess
    import sys

    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    result = subprocess.run(
        [sys.executable, "-m", "openrs.train", "experiment=smoke", f"hydra.run.dir={run_dir}"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return run_dir, result


def test_smoke_run_learns(smoke_run):
    run_dir, _ = smoke_run
    records = [r for r in read_metrics(run_dir) if "reward" in r]
    assert len(records) == 200
    first, last = (
        window_mean(records, "reward", slice(0, 20)),
        window_mean(records, "reward", slice(-20, None)),
    )
    assert last > first + 0.5, f"reward {first:.3f} -> {last:.3f}"
    # It learned the R1 format the math rewards check, not only to be short.
    assert window_mean(records, "rewards/format/mean", slice(-20, None)) > 0.6
    assert window_mean(records, "completions/mean_length", slice(-20, None)) < window_mean(
        records, "completions/mean_length", slice(0, 20)
    )


def test_smoke_run_dir_is_self_describing(smoke_run):
    run_dir, result = smoke_run
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert (run_dir / ".hydra" / "config.yaml").exists()
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["packages"]["trl"] and provenance["hardware_preset"]["name"] == "cpu"
    # What TRL actually trained with, and how: the full GRPOConfig, attention, precision, DeepSpeed (none here).
    assert provenance["grpo_config"]["loss_type"] == "bnpo" and provenance["grpo_config"]["steps_per_generation"] == 1
    assert provenance["attn_implementation"] == "eager" and provenance["deepspeed_config"] is None
    assert provenance["precision"] == {
        "weights_dtype": "float32",
        "compute": "float32",
        "master_weights": "the float32 model weights",
    }
    assert provenance["trl_cannot_reproduce_seed"]
    assert provenance["revisions"] == {"model": None, "dataset": None}
    assert "openrs.train" in " ".join(provenance["command"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 200 and summary["experiment"] == "smoke"
    assert summary["final"]["reward"] == pytest.approx(read_metrics(run_dir)[-2]["reward"])
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "train/reward" in tags and "train/rewards/format/mean" in tags
    # The step-time split (openrs.steptime) beside TRL's own step_time.
    assert {"train/perf/generation_seconds", "train/perf/reward_seconds", "train/step_time"} <= set(tags)
    assert len(acc.Scalars("train/reward")) == 200
    steps = sorted(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert steps == [50, 100, 150, 200]
    assert all((run_dir / "checkpoints" / f"checkpoint-{s}" / "COMPLETE").exists() for s in steps)
    assert (run_dir / "final" / "model.safetensors").exists()
    assert "step 200/200" in result.stdout


def tiny_overrides(*extra: str) -> list[str]:
    return ["experiment=smoke", "grpo.save_steps=1000", *extra]


def test_lora_trains_only_adapter_weights(tmp_path):
    import torch

    from openrs.training.loop import build_trainer

    cfg = to_run_config(
        compose(tiny_overrides("peft=lora", "peft.lora.r=4", "grpo.max_steps=4", "peft.lora.lora_dropout=0.0"))
    )
    trainer = build_trainer(cfg, tmp_path / "run")
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    moved = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert moved, "no weight moved"
    assert all("lora_" in n for n in moved), sorted(moved - {n for n in moved if "lora_" in n})
    trainable = {n for n, p in after.items() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_resume_skips_half_written_checkpoint(tmp_path):
    """A run killed during a save resumes from the newest *complete* checkpoint and ends at max_steps."""
    from openrs.training.loop import run_training

    run_dir = tmp_path / "run"
    # Every checkpoint keeps its state here: in a real kill mid-save, checkpoint-10 is still whole, because older
    # states are cut only once the next checkpoint is marked complete (grpo.keep_full_state).
    first = to_run_config(
        compose(["experiment=smoke", "grpo.max_steps=20", "grpo.save_steps=10", "grpo.keep_full_state=null"])
    )
    run_training(first, run_dir)
    (run_dir / "checkpoints" / "checkpoint-20" / "COMPLETE").unlink()  # as if killed mid-save
    second = to_run_config(compose(["experiment=smoke", "grpo.max_steps=30", "grpo.save_steps=10"]))
    summary = run_training(second, run_dir)
    assert summary["resumed_from"].endswith("checkpoint-10")
    assert summary["global_step"] == 30
    steps = [r["step"] for r in read_metrics(run_dir) if "reward" in r]
    assert steps == list(range(1, 31)), "logged steps must be continuous across the resume"
