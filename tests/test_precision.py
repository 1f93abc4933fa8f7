"""bf16 training really updates the weights: fp32 master weights wherever DeepSpeed does not keep them."""

from __future__ import annotations

import pytest

from openrs.config import compose, to_run_config

pytestmark = pytest.mark.slow


class _GradSnapshot:
    """A callback that records which parameters carry a nonzero gradient just before the optimizer step."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        snapshot = self

        class Callback(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
                snapshot.nonzero = {n: p.grad.detach() != 0 for n, p in model.named_parameters() if p.grad is not None}

        self.nonzero: dict = {}  # parameter name -> elementwise mask of nonzero gradient
        self.callback = Callback()


def test_bf16_single_rank_step_at_lr_1e6_changes_the_weights(tmp_path):
    """One optimizer step at the paper's lr, bf16 as a single-GPU preset runs it (here: CPU autocast).

    Counted per weight (tensor element): of the weights whose gradient is nonzero, at least 90% must change.

    With bf16 weights and no fp32 master copy, an update of ~1e-6 is far below bf16's resolution (~4e-3
    relative) and rounds away, so almost nothing moves; with fp32 masters every parameter with a gradient moves.
    """
    import torch

    from openrs.training.loop import build_trainer

    cfg = to_run_config(
        compose(
            [
                "experiment=smoke",
                "model.dtype=bfloat16",
                "hardware.bf16=true",
                "lr=1e-6",
                "optimizer.warmup_ratio=0.0",
                "optimizer.lr_scheduler_type=constant",
                "optimizer.max_grad_norm=0",
                "grpo.max_steps=1",
                "grpo.save_steps=1000",
                "diagnostics.text=false",
            ]
        )
    )
    trainer = build_trainer(cfg, tmp_path / "run")
    grads = _GradSnapshot()
    trainer.add_callback(grads.callback)
    before = {n: p.detach().float().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    with_grad = changed = 0
    for name, mask in grads.nonzero.items():
        moved = before[name] != after[name].detach().float()
        with_grad += int(mask.sum())
        changed += int((moved & mask).sum())
    assert with_grad > 0, "no parameter received a gradient"
    share = changed / with_grad
    assert share >= 0.9, f"only {changed:,} of {with_grad:,} weights with a gradient changed ({share:.1%})"
    assert next(trainer.model.parameters()).dtype == torch.float32  # the master copy is what trains


def test_precision_plans():
    from openrs.config.precision import precision_plan

    assert precision_plan("bfloat16", True, "zero2.json").weights_dtype == "bfloat16"  # ZeRO keeps fp32 masters
    assert "host memory" in precision_plan("bfloat16", True, "z.json", offload_optimizer=True).master_weights
    plan = precision_plan("bfloat16", True, None)
    assert (plan.weights_dtype, plan.compute) == ("float32", "bf16 autocast")
    assert precision_plan("float32", False, None).weights_dtype == "float32"
    with pytest.raises(ValueError, match=r"model.dtype=bfloat16 with hardware.bf16=false .* no float32 master"):
        precision_plan("bfloat16", False, None)
