"""Project a measured GRPO step onto another run shape and GPU (the GPUs' published figures: openrs.gpu_check.gpus).

A projection, not a measurement. Each phase of an optimizer step is scaled by how much more work the target step
holds and by how much faster or slower the target GPU is for that kind of work:

- generation (sampling at small batch is bound by memory bandwidth: every decode step reads the weights and the
  KV cache): x bytes read over a step's decode steps (target / check) x bandwidth (this GPU / target GPU);
- loss forward/backward (bound by compute): x prompt+completion tokens per training rank (target / check)
  x dense bf16 TFLOPS (this GPU / target GPU);
- the rest of the step (the optimizer update, memory-bound, sharded over the ranks by ZeRO-2):
  x training ranks (check / target) x bandwidth (this GPU / target GPU);
- rewards (CPU work, each rank scores its own completions): x completion tokens per rank (target / check).

:func:`self_check` proves the arithmetic on cases with known answers (the dry run calls it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from openrs.gpu_check.gpus import A40, GpuSpec

BYTES_BF16 = 2


@dataclass(frozen=True)
class ModelCost:
    """What one decode step of a model reads, besides the KV cache."""

    weights_bytes: float  # all parameters in bf16
    kv_bytes_per_token: float  # K and V of one token over all layers, bf16

    @classmethod
    def qwen2(cls, params: int, layers: int, kv_heads: int, head_dim: int) -> ModelCost:
        return cls(params * BYTES_BF16, 2 * layers * kv_heads * head_dim * BYTES_BF16)


@dataclass(frozen=True)
class StepShape:
    """The work of one optimizer step."""

    rounds: int  # generation rounds per optimizer step
    completions_per_round: int  # sequences one round samples, over all ranks
    decode_steps: float  # sequential decode steps of a round (its longest completion, in tokens)
    completion_tokens: float  # mean completion length, tokens
    prompt_tokens: float  # mean prompt length, tokens
    training_ranks: int

    @property
    def completions(self) -> int:
        return self.rounds * self.completions_per_round


def decode_bytes(shape: StepShape, model: ModelCost) -> float:
    """Bytes read by one optimizer step's decoding: each step reads the weights and every sequence's KV cache.

    The cache of a sequence holds ``prompt_tokens + t`` tokens at decode step ``t``, summed over the round's steps.
    """
    steps, batch = shape.decode_steps, shape.completions_per_round
    kv_tokens = batch * (steps * shape.prompt_tokens + steps * (steps - 1) / 2)
    return shape.rounds * (steps * model.weights_bytes + kv_tokens * model.kv_bytes_per_token)


def train_tokens_per_rank(shape: StepShape) -> float:
    """Prompt and completion tokens one training rank runs forward and backward in an optimizer step."""
    return shape.completions * (shape.prompt_tokens + shape.completion_tokens) / shape.training_ranks


def reward_tokens_per_rank(shape: StepShape) -> float:
    """Completion tokens one rank's reward functions read in an optimizer step."""
    return shape.completions * shape.completion_tokens / shape.training_ranks


@dataclass(frozen=True)
class PhaseTimes:
    """Seconds per optimizer step, by phase."""

    generation: float
    reward: float
    loss: float
    other: float

    @property
    def total(self) -> float:
        return self.generation + self.reward + self.loss + self.other


@dataclass(frozen=True)
class Factor:
    """One phase's scaling: work ratio x GPU ratio."""

    work: float
    gpu: float

    @property
    def total(self) -> float:
        return self.work * self.gpu


@dataclass(frozen=True)
class Projection:
    per_step: PhaseTimes
    factors: dict[str, Factor]
    steps: int
    gpus: int
    price_per_gpu_hour: float
    generation_floor_s: float  # target decoding at 100% of the target GPU's bandwidth: no engine is faster
    check_bandwidth_share: float  # the check's decode bytes over its generation seconds, as a share of its GPU's peak

    @property
    def hours(self) -> float:
        return self.per_step.total * self.steps / 3600

    @property
    def cost_usd(self) -> float:
        return self.hours * self.gpus * self.price_per_gpu_hour

    @property
    def floor_hours(self) -> float:
        """Hours with generation at its bandwidth floor and every other phase as projected."""
        return (self.per_step.total - self.per_step.generation + self.generation_floor_s) * self.steps / 3600

    @property
    def floor_cost_usd(self) -> float:
        return self.floor_hours * self.gpus * self.price_per_gpu_hour


def factors(check: StepShape, target: StepShape, model: ModelCost, here: GpuSpec, there: GpuSpec) -> dict[str, Factor]:
    """The scaling of each phase from the check's step on ``here`` to the target's step on ``there``."""
    bandwidth = here.bandwidth_gbs / there.bandwidth_gbs
    return {
        "generation": Factor(decode_bytes(target, model) / decode_bytes(check, model), bandwidth),
        "loss": Factor(
            train_tokens_per_rank(target) / train_tokens_per_rank(check), here.bf16_tflops / there.bf16_tflops
        ),
        "other": Factor(check.training_ranks / target.training_ranks, bandwidth),
        "reward": Factor(reward_tokens_per_rank(target) / reward_tokens_per_rank(check), 1.0),
    }


def project(
    measured: PhaseTimes,
    check: StepShape,
    target: StepShape,
    model: ModelCost,
    here: GpuSpec,
    there: GpuSpec = A40,
    steps: int = 500,
    gpus: int = 4,
    price_per_gpu_hour: float = 0.44,
) -> Projection:
    """The target run's seconds per step, hours and cost, from the check's measured seconds per step."""
    f = factors(check, target, model, here, there)
    per_step = PhaseTimes(
        generation=measured.generation * f["generation"].total,
        reward=measured.reward * f["reward"].total,
        loss=measured.loss * f["loss"].total,
        other=measured.other * f["other"].total,
    )
    floor = decode_bytes(target, model) / (there.bandwidth_gbs * 1e9)
    share = (
        decode_bytes(check, model) / (measured.generation * here.bandwidth_gbs * 1e9) if measured.generation else 0.0
    )
    return Projection(per_step, f, steps, gpus, price_per_gpu_hour, floor, share)


def rs3_on_a40x4(check: StepShape, max_len: int = 3584) -> StepShape:
    """rs3 on the paper's node: 3 ranks x 6 completions a micro-step, 4 micro-steps, one vLLM round each.

    Every completion is assumed to run to ``max_len`` (an upper bound), and prompts as long as the check's.
    """
    return StepShape(
        rounds=4,
        completions_per_round=18,
        decode_steps=max_len,
        completion_tokens=max_len,
        prompt_tokens=check.prompt_tokens,
        training_ranks=3,
    )


def self_check() -> list[str]:
    """Cases with known answers; returns what was checked, raises AssertionError on the first wrong one."""
    model = ModelCost.qwen2(params=1_777_088_000, layers=28, kv_heads=2, head_dim=128)
    shape = StepShape(
        rounds=4,
        completions_per_round=18,
        decode_steps=3584,
        completion_tokens=3584,
        prompt_tokens=200,
        training_ranks=3,
    )
    measured = PhaseTimes(generation=100.0, reward=2.0, loss=40.0, other=3.0)
    done = []

    same = project(measured, shape, shape, model, A40, A40, steps=500, gpus=4, price_per_gpu_hour=0.44)
    assert all(math.isclose(f.total, 1.0) for f in same.factors.values()), same.factors
    assert math.isclose(same.per_step.total, measured.total), "same shape on the same GPU must give the measurement"
    assert math.isclose(same.hours, measured.total * 500 / 3600)
    assert math.isclose(same.cost_usd, same.hours * 4 * 0.44)
    done.append("identity: the target's own shape on its own GPU gives back the measured step")

    doubled = PhaseTimes(*(2 * x for x in (measured.generation, measured.reward, measured.loss, measured.other)))
    assert math.isclose(project(doubled, shape, shape, model, A40, A40).per_step.total, 2 * measured.total)
    done.append("linearity: twice the measured seconds give twice the projection")

    fast = GpuSpec("2x A40", 2 * A40.bf16_tflops, 2 * A40.bandwidth_gbs, "test")
    from_fast = project(measured, shape, shape, model, fast, A40)
    assert math.isclose(from_fast.per_step.generation, 2 * measured.generation)
    assert math.isclose(from_fast.per_step.loss, 2 * measured.loss)
    assert math.isclose(from_fast.per_step.reward, measured.reward), "rewards run on the CPU"
    done.append("GPU ratio: a GPU twice as fast measured half the time; rewards are not scaled")

    one_rank = replace(shape, training_ranks=1)
    spread = project(measured, one_rank, shape, model, A40, A40)
    assert math.isclose(spread.per_step.loss, measured.loss / 3)
    assert math.isclose(spread.per_step.other, measured.other / 3)
    assert math.isclose(spread.per_step.reward, measured.reward / 3)
    assert math.isclose(spread.per_step.generation, measured.generation), "one server generates for all ranks"
    done.append("ranks: 3 training ranks share the loss, reward and optimizer work of one")

    weightless = ModelCost(weights_bytes=1.0, kv_bytes_per_token=0.0)
    longer = replace(shape, decode_steps=2 * shape.decode_steps)
    assert math.isclose(decode_bytes(longer, weightless), 2 * decode_bytes(shape, weightless))
    kv_only = ModelCost(weights_bytes=0.0, kv_bytes_per_token=1.0)
    tiny = StepShape(
        rounds=1,
        completions_per_round=2,
        decode_steps=3,
        completion_tokens=3,
        prompt_tokens=10,
        training_ranks=1,
    )
    assert decode_bytes(tiny, kv_only) == 2 * (10 + 11 + 12)  # two sequences read 10, 11, then 12 cached tokens
    done.append("decode bytes: weights once per decode step, each sequence's cache as it grows")
    return done
