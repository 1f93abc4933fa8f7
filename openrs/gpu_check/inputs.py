"""What both modes of the GPU check work from before measuring: the GPU's published figures, the target run
(rs3 as composed) and its step shape, the work ratios between the two shapes, and the built model's facts."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from openrs.gpu_check import gpus

if TYPE_CHECKING:  # the skip path imports nothing heavy
    from openrs.gpu_check import projection
    from openrs.gpu_check.report import Check


def spec_here(args: argparse.Namespace, device: str | None) -> gpus.GpuSpec | None:
    if args.gpu_tflops and args.gpu_bandwidth_gbs:
        return gpus.GpuSpec(device or "this GPU", args.gpu_tflops, args.gpu_bandwidth_gbs, "given on the command line")
    return gpus.lookup(device) if device else None


def target_run(prompt_tokens: float) -> tuple[Any, projection.StepShape]:
    """The projection's target run (the rs3 preset, as composed) and its step shape."""
    from openrs.gpu_check import plan

    cfg = plan.compose_run([plan.TARGET_EXPERIMENT])
    return cfg, plan.shape_of(cfg, prompt_tokens)


def work_factors(check: projection.StepShape, target: projection.StepShape, cost: projection.ModelCost) -> dict:
    """The work ratios, which need no measurement (the GPU ratios are A40 against itself here: 1)."""
    from openrs.gpu_check import projection

    f = projection.factors(check, target, cost, gpus.A40, gpus.A40)
    return {phase: factor.work for phase, factor in f.items()}


def meta_model(cfg: Any, tokenizer: Any) -> Any:
    from openrs.models import tiny as local_models

    tiny = cfg.model.tiny
    return local_models.build_tiny_model(
        tiny,
        len(tokenizer),
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        device="meta",
    )


def model_facts(cfg: Any, tokenizer: Any, model: Any) -> tuple[dict[str, Any], projection.ModelCost, Check]:
    """What the built model is, and whether it has the shape the config asks for."""
    from openrs.gpu_check import plan
    from openrs.gpu_check.report import Check

    tiny = cfg.model.tiny
    params, cost = plan.model_cost(model)
    c = model.config
    expected = plan.qwen2_params(
        c.hidden_size,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.intermediate_size,
        c.vocab_size,
        c.tie_word_embeddings,
    )
    facts = {
        "model": (
            f"random-init Qwen2ForCausalLM: hidden {c.hidden_size}, {c.num_hidden_layers} layers, "
            f"{c.num_attention_heads} heads / {c.num_key_value_heads} KV heads, MLP {c.intermediate_size}, "
            f"vocab {c.vocab_size}, tied embeddings {c.tie_word_embeddings}, rope_theta "
            f"{c.rope_parameters.get('rope_theta')}, {c.max_position_embeddings} positions"
        ),
        "parameters": f"{params:,}",
        "tokenizer": f"{len(tokenizer):,} entries ({tiny.vocab_size} BPE learnt on the spot"
        + (", the rest inert filler)" if tiny.tokenizer_fill_to else ")"),
    }
    ok = params == expected and len(tokenizer) <= c.vocab_size
    detail = f"{params:,} parameters (by hand: {expected:,}); tokenizer {len(tokenizer):,} <= vocab {c.vocab_size:,}"
    return facts, cost, Check("model shape", ok, detail)


def composed_for(args: argparse.Namespace, backends: Any, device_gb: float) -> tuple[list[str], Any, Any]:
    """The check's overrides and config with the optimizer layout chosen for a GPU of ``device_gb``, and the choice."""
    from openrs.gpu_check import plan
    from openrs.models.shape import model_shape

    base = plan.compose_run(plan.check_overrides(args.overrides, backends))
    if base.model.tiny is None:
        raise SystemExit(f"model={base.model.name_or_path}: the GPU check needs a locally built model (model.tiny)")
    choice = plan.choose_layout(args.overrides, backends, device_gb, model_shape(base.model))
    overrides = plan.check_overrides(args.overrides, backends, choice.overrides)
    return overrides, plan.compose_run(overrides), choice


def memory_check(choice: Any, device_gb: float, where: str) -> Check:
    """The memory plan as a check: what was chosen and why, the estimate by part, and what to turn if it cannot fit."""
    from openrs.gpu_check.report import Check

    memory = choice.memory
    detail = f"{where} {device_gb:g} GB: {choice.reason}; estimate {memory.describe()}"
    if not memory.fits:
        detail += "; to fit: " + "; or ".join(memory.knobs())
    return Check("memory plan", memory.fits, detail)
