"""The memory plan's arithmetic, pinned to the issue's count for DeepSeek-R1-Distill-Qwen-1.5B on one A40."""

from __future__ import annotations

import pytest

from openrs.config.memory import plan_memory

PARAMS = 1_777_088_000  # DeepSeek-R1-Distill-Qwen-1.5B by hand count (gpu_check.plan.qwen2_params): 3.55 GB in bf16


def test_one_a40_with_adamw_on_the_gpu_does_not_fit_and_offload_does():
    on_gpu = plan_memory(PARAMS, 48, ranks=1, vllm_colocate_share=0.3)
    parts = on_gpu.parts
    assert parts["weights"] == pytest.approx(3.55, abs=0.01) and parts["gradients"] == pytest.approx(3.55, abs=0.01)
    assert parts["fp32 masters"] == pytest.approx(7.1, abs=0.02) and parts["AdamW states"] == pytest.approx(
        14.2, abs=0.05
    )
    assert parts["reference model"] == pytest.approx(3.55, abs=0.01) and parts["colocated vLLM"] == pytest.approx(14.4)
    assert parts["fp32 step gradients"] == pytest.approx(7.1, abs=0.02)
    assert on_gpu.total_gb > 48 and not on_gpu.fits()
    offload = plan_memory(PARAMS, 48, ranks=1, offload_optimizer=True, vllm_colocate_share=0.3)
    assert offload.fits() and offload.total_gb == pytest.approx(3.55 * 3 + 14.4, abs=0.05)
    assert plan_memory(PARAMS, 141, ranks=1, vllm_colocate_share=0.3).fits()  # an H200 keeps AdamW on the GPU


def test_zero2_shards_the_optimizer_over_the_ranks_and_a_server_frees_the_training_gpus():
    three = plan_memory(PARAMS, 48, ranks=3)
    assert three.parts["AdamW states"] == pytest.approx(14.2 / 3, abs=0.02) and three.parts["colocated vLLM"] == 0
    assert three.fits() and "reference model 3.55" in three.describe()
