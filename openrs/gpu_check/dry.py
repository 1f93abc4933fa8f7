"""The check without a GPU (``--dry-run``): everything but the GPU steps, on CPU in seconds, so the script itself
is tested where no GPU is: configs compose, the tokenizer and the model's shapes build, TRL's and DeepSpeed's configs
build, the projection's arithmetic holds, and the report renders."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

from openrs.gpu_check import inputs
from openrs.records.console import quiet_libraries

DRY_RUN_GPU_GB = 48.0  # without --gpu-memory-gb the dry run plans for the paper's GPU, an A40


def dry_run(args: argparse.Namespace) -> int:
    """Compose, build the tokenizer and the model on the meta device, build TRL's and DeepSpeed's configs, render."""
    started = time.monotonic()
    from transformers import AutoTokenizer

    from openrs.gpu_check import gpus, plan, projection
    from openrs.gpu_check.markdown import markdown
    from openrs.gpu_check.report import Check, CheckResult, console
    from openrs.models import tiny as local_models
    from openrs.training.grpo_config import to_grpo_config

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    backends = plan.Backends.installed()
    device_gb = args.gpu_memory_gb or DRY_RUN_GPU_GB
    overrides, cfg, choice = inputs.composed_for(args, backends, device_gb)
    where = "a GPU of" if args.gpu_memory_gb else "no GPU here; planned for an A40's"
    checks: list[Check] = [Check("config composes", True, " ".join(overrides))]
    checks.append(inputs.memory_check(choice, device_gb, where))
    tiny = cfg.model.tiny

    with tempfile.TemporaryDirectory(prefix="openrs-gpu-check-dry-") as tmp:
        tok = local_models.build_tiny_tokenizer(tiny.vocab_size, tiny.tokenizer_fill_to, tiny.max_position_embeddings)
        tok.save_pretrained(tmp)
        tokenizer = AutoTokenizer.from_pretrained(tmp)  # the loading path a run takes
        sample = [7, len(tokenizer) - 6, len(tokenizer) // 2]
        checks.append(
            Check(
                "tokenizer builds and loads",
                len(tokenizer) == (tiny.tokenizer_fill_to or len(tok)),
                f"{len(tokenizer):,} entries; ids {sample} decode to {tokenizer.decode(sample)!r}",
            )
        )
        model = inputs.meta_model(cfg, tokenizer)
        facts, cost, shape_check = inputs.model_facts(cfg, tokenizer, model)
        checks.append(dataclasses.replace(shape_check, detail=shape_check.detail + " (meta device: shapes only)"))
        prompt_tokens = plan.prompt_tokens(cfg, tokenizer)

        cpu_cfg = dataclasses.replace(cfg, hardware=dataclasses.replace(cfg.hardware, use_cpu=True))
        args_trl = to_grpo_config(cpu_cfg, Path(tmp) / "run")  # use_cpu only: this machine has no GPU
        gen_batch = args_trl.generation_batch_size
        checks.append(
            Check(
                "GRPOConfig builds",
                gen_batch == plan.completions_per_round(cfg) and gen_batch % args_trl.num_generations == 0,
                f"{args_trl.per_device_train_batch_size} completions a micro-step, generation batch {gen_batch}, "
                f"{args_trl.num_generations} per prompt, max {args_trl.max_completion_length} tokens, bf16 {args_trl.bf16}, "
                f"gradient checkpointing {args_trl.gradient_checkpointing}, loss {args_trl.loss_type}",
            )
        )
        if cfg.hardware.deepspeed:
            ds = args_trl.hf_deepspeed_config.config  # after transformers filled its "auto" values
            zero = ds.get("zero_optimization", {})
            checks.append(
                Check(
                    "DeepSpeed config",
                    zero.get("stage") == 2,
                    f"{cfg.hardware.deepspeed}: ZeRO stage {zero.get('stage')}, micro-batch "
                    f"{ds.get('train_micro_batch_size_per_gpu')}, offload "
                    f"{zero.get('offload_optimizer', {}).get('device')}",
                )
            )
        else:
            checks.append(Check("DeepSpeed config", True, "none: DeepSpeed is not installed"))

    done = projection.self_check()
    checks.append(
        Check("projection arithmetic", True, f"{len(done)} cases: " + "; ".join(d.split(":")[0] for d in done))
    )
    for name in ("run finished", "reached max_steps", "losses finite", "weights moved", "weights finite"):
        checks.append(Check(name, None, "needs a GPU"))

    check_shape = plan.shape_of(cfg, prompt_tokens)
    target_cfg, target_shape = inputs.target_run(prompt_tokens)
    result = CheckResult(
        dry_run=True,
        env=plan.environment(),
        overrides=overrides,
        ran=plan.describe(cfg, backends),
        model=facts,
        checks=checks,
        check_shape=check_shape,
        target_shape=target_shape,
        there=gpus.A40,
        factors={
            "work": inputs.work_factors(check_shape, target_shape, cost),
            "steps": target_cfg.grpo.max_steps,
        },
    )
    result.timings["total_s"] = time.monotonic() - started
    path = args.report or Path(tempfile.mkstemp(prefix="RESULTS_gpu-dry-", suffix=".md")[1])
    path.write_text(markdown(result))
    print(console(result))
    print(f"dry run: {'ok' if result.ok else 'FAILED'} in {result.timings['total_s']:.1f} s; report: {path}")
    return 0 if result.ok else 1
