"""``python -m openrs.gpu_check``: run the check (or its dry run), decide pass or fail, write the report.

Exit status: 0 when every check passes (or there is no CUDA device: one line, nothing checked), 1 when any fails;
the failed checks are named in the table and the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openrs.gpu_check import inputs
from openrs.run_dir import RunDir

if TYPE_CHECKING:  # the skip path imports nothing heavy: torch only
    from openrs.gpu_check.report import Check

REPO_DIR = Path(__file__).resolve().parents[2]
REPORT = REPO_DIR / "benchmarks" / "RESULTS_gpu.md"
SKIP_LINE = "gpu-check: no CUDA device; nothing to check (use --dry-run to test the script itself)"
BUDGET_S = 480.0  # the whole check, model build included, on one modern GPU

log = logging.getLogger("openrs.gpu_check")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m openrs.gpu_check",
        description="The GPU acceptance check: a few rs3-shaped GRPO steps on one GPU, checks, and a report "
        "(benchmarks/RESULTS_gpu.md) with a projection of rs3 on 4x A40.",
    )
    p.add_argument("--dry-run", action="store_true", help="everything but the GPU steps; runs on CPU in seconds")
    p.add_argument("--report", type=Path, help=f"where to write the report (default: {REPORT.relative_to(REPO_DIR)}; "
                   "a temporary file with --dry-run)")  # fmt: skip
    p.add_argument("--run-dir", type=Path, help="run directory (default: a temporary one, removed after a pass)")
    p.add_argument("--keep", action="store_true", help="keep the run directory after a pass")
    p.add_argument("--budget-s", type=float, default=BUDGET_S, help="fail past this many seconds in all (0: no limit)")
    p.add_argument("--gpu-tflops", type=float, help="this GPU's dense bf16 TFLOPS, where the built-in table lacks it")
    p.add_argument("--gpu-bandwidth-gbs", type=float, help="this GPU's memory bandwidth in GB/s, with --gpu-tflops")
    p.add_argument("overrides", nargs="*", help="Hydra overrides after the check's own, e.g. max_len=2048")
    return p.parse_args(argv)


def _since_start() -> float:
    """Seconds since this process started (imports included)."""
    import psutil

    return time.time() - psutil.Process().create_time()


def _quiet() -> None:
    """Keep the output to the run's own lines: no per-map progress bars, no deprecations that are TRL's to fix."""
    import warnings

    import datasets

    datasets.disable_progress_bars()
    for message in ("`gradient_checkpointing.*` is deprecated", "`is_gradient_checkpointing` is deprecated"):
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        return dry_run(args)
    if not cuda_available():
        print(SKIP_LINE)
        return 0
    return gpu_run(args)


def dry_run(args: argparse.Namespace) -> int:
    """Compose, build the tokenizer and the model on the meta device, build TRL's and DeepSpeed's configs, render."""
    from transformers import AutoTokenizer

    from openrs import tiny as local_models
    from openrs.gpu_check import plan, projection
    from openrs.gpu_check.report import Check, CheckResult, console, markdown
    from openrs.grpo_config import to_grpo_config

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _quiet()
    backends = plan.Backends.installed()
    overrides = plan.check_overrides(args.overrides, backends)
    checks: list[Check] = []
    cfg = plan.compose_run(overrides)
    checks.append(Check("config composes", True, " ".join(overrides)))
    tiny = cfg.model.tiny
    if tiny is None:
        raise SystemExit(f"model={cfg.model.name_or_path}: the GPU check needs a locally built model (model.tiny)")

    with tempfile.TemporaryDirectory(prefix="openrs-gpu-check-dry-") as tmp:
        tok = local_models.build_tiny_tokenizer(tiny.vocab_size, tiny.tokenizer_fill_to, tiny.max_position_embeddings)
        tok.save_pretrained(tmp)
        tokenizer = AutoTokenizer.from_pretrained(tmp)  # the loading path a run takes
        sample = [7, len(tokenizer) - 6, len(tokenizer) // 2]
        checks.append(Check("tokenizer builds and loads", len(tokenizer) == (tiny.tokenizer_fill_to or len(tok)),
                            f"{len(tokenizer):,} entries; ids {sample} decode to {tokenizer.decode(sample)!r}"))  # fmt: skip
        model = inputs.meta_model(cfg, tokenizer)
        facts, cost, shape_check = inputs.model_facts(cfg, tokenizer, model)
        checks.append(dataclasses.replace(shape_check, detail=shape_check.detail + " (meta device: shapes only)"))
        prompt_tokens = plan.prompt_tokens(cfg, tokenizer)

        cpu_cfg = dataclasses.replace(cfg, hardware=dataclasses.replace(cfg.hardware, use_cpu=True))
        args_trl = to_grpo_config(cpu_cfg, Path(tmp) / "run")  # use_cpu only: this machine has no GPU
        gen_batch = args_trl.generation_batch_size
        checks.append(Check(
            "GRPOConfig builds", gen_batch == plan.completions_per_round(cfg) and gen_batch % args_trl.num_generations == 0,
            f"{args_trl.per_device_train_batch_size} completions a micro-step, generation batch {gen_batch}, "
            f"{args_trl.num_generations} per prompt, max {args_trl.max_completion_length} tokens, bf16 {args_trl.bf16}, "
            f"gradient checkpointing {args_trl.gradient_checkpointing}, loss {args_trl.loss_type}",
        ))  # fmt: skip
        if cfg.hardware.deepspeed:
            ds = args_trl.hf_deepspeed_config.config  # after transformers filled its "auto" values
            zero = ds.get("zero_optimization", {})
            checks.append(Check("DeepSpeed config", zero.get("stage") == 2,
                                f"{cfg.hardware.deepspeed}: ZeRO stage {zero.get('stage')}, micro-batch "
                                f"{ds.get('train_micro_batch_size_per_gpu')}, offload "
                                f"{zero.get('offload_optimizer', {}).get('device')}"))  # fmt: skip
        else:
            checks.append(Check("DeepSpeed config", True, "none: DeepSpeed is not installed"))

    done = projection.self_check()
    checks.append(Check("projection arithmetic", True, f"{len(done)} cases: " + "; ".join(d.split(':')[0] for d in done)))
    for name in ("run finished", "reached max_steps", "losses finite", "weights moved", "weights finite"):
        checks.append(Check(name, None, "needs a GPU"))

    check_shape = plan.shape_of(cfg, prompt_tokens)
    target_cfg, target_shape = inputs.target_run(prompt_tokens)
    result = CheckResult(
        dry_run=True, env=plan.environment(), overrides=overrides, ran=plan.describe(cfg, backends), model=facts,
        checks=checks, check_shape=check_shape, target_shape=target_shape, there=projection.A40,
        factors={"work": inputs.work_factors(check_shape, target_shape, cost), "steps": target_cfg.grpo.max_steps},
    )  # fmt: skip
    result.timings["total_s"] = _since_start()
    path = args.report or Path(tempfile.mkstemp(prefix="RESULTS_gpu-dry-", suffix=".md")[1])
    path.write_text(markdown(result))
    print(console(result))
    print(f"dry run: {'ok' if result.ok else 'FAILED'} in {result.timings['total_s']:.1f} s; report: {path}")
    return 0 if result.ok else 1


def gpu_run(args: argparse.Namespace) -> int:
    """The check itself: build the model, train a few steps through openrs.launch, check, measure, report."""
    from transformers import AutoTokenizer

    from openrs import metrics_log, models
    from openrs.gpu_check import measure, plan, projection
    from openrs.gpu_check.report import Check, CheckResult, console, markdown
    from openrs.launch import launch, make_plan, visible_gpus

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _quiet()
    backends = plan.Backends.installed()
    overrides = plan.check_overrides(args.overrides, backends)
    cfg = plan.compose_run(overrides)
    if cfg.model.tiny is None:
        raise SystemExit(f"model={cfg.model.name_or_path}: the GPU check needs a locally built model (model.tiny)")
    env = plan.environment()
    device = env["devices"][0]["name"] if env["devices"] else None
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="openrs-gpu-check-"))
    checks: list[Check] = [Check("config composes", True, " ".join(overrides))]
    timings: dict[str, float] = {}

    t = time.perf_counter()
    model_dir = Path(models.resolve_model_path(cfg.model))  # built once and cached; launch reuses it
    timings["model_s"] = time.perf_counter() - t
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    facts, cost, shape_check = inputs.model_facts(cfg, tokenizer, inputs.meta_model(cfg, tokenizer))
    checks.append(shape_check)
    prompt_tokens = plan.prompt_tokens(cfg, tokenizer)

    error = None
    summary: dict[str, Any] = {}
    with measure.DeviceMemorySampler() as sampler:
        t = time.perf_counter()
        try:
            summary = launch(cfg, run_dir)
        except Exception as exc:  # noqa: BLE001 - a failed run is the first failed check, reported with the rest
            log.exception("the check's training run failed")
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
        timings["run_s"] = time.perf_counter() - t
    kept = f" in {run_dir}" if args.keep or args.run_dir else ""  # a temporary run dir goes after a pass
    checks.append(Check("run finished", error is None, error or f"{timings['run_s']:.0f} s{kept}"))

    steps = measure.step_figures(metrics_log.read_metrics(run_dir), plan.completions_per_step(cfg), plan.rounds_per_step(cfg))
    want = cfg.grpo.max_steps
    reached = summary.get("global_step")
    checks.append(Check("reached max_steps", reached == want and len(steps) == want,
                        f"global step {reached}, {len(steps)} logged steps, wanted {want}"))  # fmt: skip
    bad = [s.step for s in steps if not s.finite]
    checks.append(Check("losses finite", bool(steps) and not bad, f"non-finite loss/grad_norm/kl at steps {bad}" if bad
                        else "loss, grad_norm and kl finite at every step"))  # fmt: skip
    weights = None
    final = RunDir(run_dir).final
    if any(final.glob("*.safetensors")):
        weights = measure.compare_weights(model_dir, final)
        # A tensor the model had but the saved one lacks fails; an extra one (DeepSpeed saves a tied lm_head too) does not.
        detail = (f"{weights.changed_tensors:,}/{weights.tensors:,} tensors, {weights.changed_elements:,} elements "
                  f"changed, largest {weights.max_abs_change:.3g}")  # fmt: skip
        if weights.missing:
            detail += f"; missing after training: {weights.missing[:3]}"
        if weights.unexpected:
            detail += f"; also saved: {weights.unexpected[:3]}"
        checks.append(Check("weights moved", weights.moved and not weights.missing, detail))
        checks.append(Check("weights finite", weights.finite, f"non-finite: {weights.nonfinite[:5]}" if weights.nonfinite
                            else f"every element of {weights.tensors:,} tensors"))  # fmt: skip
    else:
        checks.append(Check("weights moved", False, f"no saved model in {final}"))
        checks.append(Check("weights finite", False, f"no saved model in {final}"))

    in_process = make_plan(cfg.hardware, [] if cfg.hardware.use_cpu else visible_gpus()).in_process
    memory = measure.this_process_memory() if in_process else measure.rank_memory(run_dir)
    runtime = summary.get("train_runtime_s")
    steady = measure.steady_state(steps, runtime / reached if isinstance(runtime, (int, float)) and reached else None)
    check_shape = plan.shape_of(cfg, prompt_tokens, steady.get("max_length"), steady.get("mean_length"))
    target_cfg, target_shape = inputs.target_run(prompt_tokens)
    here = inputs.spec_here(args, device)
    proj = None
    phases = [steady.get(k) for k in ("generation", "reward", "loss", "other")]
    if here is not None and None not in phases:
        proj = projection.project(
            projection.PhaseTimes(*phases), check_shape, target_shape, cost, here, projection.A40,
            steps=target_cfg.grpo.max_steps, gpus=target_cfg.hardware.num_gpus,
            price_per_gpu_hour=target_cfg.hardware.price_per_gpu_hour,
        )  # fmt: skip
    timings["total_s"] = _since_start()
    if args.budget_s:
        checks.append(Check("within time budget", timings["total_s"] <= args.budget_s,
                            f"{timings['total_s']:.0f} s of {args.budget_s:.0f} s (model build {timings['model_s']:.0f} s)"))  # fmt: skip
    notes = []
    if not cfg.hardware.use_vllm:
        notes.append("generation ran with transformers generate(), not vLLM: at this model size its decode loop is "
                     "bound by per-token overheads, so the projection is for a run that generates the same way; "
                     "the paper's vLLM run is nearer the floor line")  # fmt: skip
    if device and here is None:
        notes.append(f"{device} is not in openrs/gpu_check/projection.py's table; no projection "
                     "(pass --gpu-tflops and --gpu-bandwidth-gbs)")  # fmt: skip
    result = CheckResult(
        dry_run=False, env=env, overrides=overrides, ran=plan.describe(cfg, backends), model=facts, checks=checks,
        steps=steps, steady=steady, memory=memory, device_peak_mib=sampler.peak_mib, weights=weights, timings=timings,
        check_shape=check_shape, target_shape=target_shape, here=here, there=projection.A40, projection=proj,
        factors={"work": inputs.work_factors(check_shape, target_shape, cost), "steps": target_cfg.grpo.max_steps},
        notes=notes,
    )  # fmt: skip
    report = args.report or REPORT
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(markdown(result))
    print(console(result))
    print(f"report: {report}")
    if result.ok and not args.keep and args.run_dir is None:
        shutil.rmtree(run_dir, ignore_errors=True)
    elif not result.ok:
        print(f"run dir kept for inspection: {run_dir}")
    return 0 if result.ok else 1
