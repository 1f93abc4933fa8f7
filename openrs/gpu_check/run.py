"""The check on a GPU: build the model, train a few steps through openrs.runtime.launch, check, measure, report."""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from openrs.gpu_check import inputs
from openrs.gpu_check.report import REPORT
from openrs.records.console import quiet_libraries
from openrs.records.run_dir import RunDir

log = logging.getLogger("openrs.gpu_check")


def gpu_run(args: argparse.Namespace) -> int:
    """The check itself: build the model, train a few steps through openrs.runtime.launch, check, measure, report.

    Its time budget counts from here (the libraries' imports included), not from the start of the process, so a
    caller that ran other work first (a test session) is not charged for it.
    """
    started = time.monotonic()
    from transformers import AutoTokenizer

    from openrs.gpu_check import gpus, measure, plan, projection
    from openrs.gpu_check.markdown import markdown
    from openrs.gpu_check.report import Check, CheckResult, console
    from openrs.records import metrics_log
    from openrs.runtime.launch import launch
    from openrs.runtime.placement import make_plan, visible_gpus
    from openrs.training.warmstart import prepare_model

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    backends = plan.Backends.installed()
    env = plan.environment()
    device = env["devices"][0]["name"] if env["devices"] else None
    found_mib = env["devices"][0]["memory_mib"] if env["devices"] else None
    device_gb = args.gpu_memory_gb or (found_mib * 2**20 / 1e9 if found_mib else 48.0)
    where = "given as" if args.gpu_memory_gb or not found_mib else f"{device},"
    overrides, cfg, choice = inputs.composed_for(args, backends, device_gb)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="openrs-gpu-check-"))
    checks: list[Check] = [Check("config composes", True, " ".join(overrides))]
    checks.append(inputs.memory_check(choice, device_gb, where))
    timings: dict[str, float] = {}

    t = time.perf_counter()
    model_dir = Path(prepare_model(cfg.model))  # built once and cached; launch reuses it
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
            if not choice.memory.fits:  # it would die of out-of-memory minutes in; the memory plan says what to turn
                raise RuntimeError("not started: the memory plan does not fit this GPU")
            summary = launch(cfg, run_dir)
        except Exception as exc:  # noqa: BLE001 - a failed run is the first failed check, reported with the rest
            log.exception("the check's training run failed")
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
        timings["run_s"] = time.perf_counter() - t
    kept = f" in {run_dir}" if args.keep or args.run_dir else ""  # a temporary run dir goes after a pass
    checks.append(Check("run finished", error is None, error or f"{timings['run_s']:.0f} s{kept}"))

    steps = measure.step_figures(
        metrics_log.read_metrics(run_dir), plan.completions_per_step(cfg), plan.rounds_per_step(cfg)
    )
    want = cfg.grpo.max_steps
    reached = summary.get("global_step")
    checks.append(
        Check(
            "reached max_steps",
            reached == want and len(steps) == want,
            f"global step {reached}, {len(steps)} logged steps, wanted {want}",
        )
    )
    bad = [s.step for s in steps if not s.finite]
    checks.append(
        Check(
            "losses finite",
            bool(steps) and not bad,
            f"non-finite loss/grad_norm/kl at steps {bad}" if bad else "loss, grad_norm and kl finite at every step",
        )
    )
    weights = None
    final = RunDir(run_dir).final
    if any(final.glob("*.safetensors")):
        weights = measure.compare_weights(model_dir, final)
        # A tensor the model had but the saved one lacks fails; an extra one (DeepSpeed saves a tied lm_head too) does not.
        detail = (
            f"{weights.changed_tensors:,}/{weights.tensors:,} tensors, {weights.changed_elements:,} elements "
            f"changed, largest {weights.max_abs_change:.3g}"
        )
        if weights.missing:
            detail += f"; missing after training: {weights.missing[:3]}"
        if weights.unexpected:
            detail += f"; also saved: {weights.unexpected[:3]}"
        checks.append(Check("weights moved", weights.moved and not weights.missing, detail))
        checks.append(
            Check(
                "weights finite",
                weights.finite,
                f"non-finite: {weights.nonfinite[:5]}"
                if weights.nonfinite
                else f"every element of {weights.tensors:,} tensors",
            )
        )
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
            projection.PhaseTimes(*phases),
            check_shape,
            target_shape,
            cost,
            here,
            gpus.A40,
            steps=target_cfg.grpo.max_steps,
            gpus=target_cfg.hardware.num_gpus,
            price_per_gpu_hour=target_cfg.hardware.price_per_gpu_hour,
        )
    timings["total_s"] = time.monotonic() - started
    if args.budget_s:
        checks.append(
            Check(
                "within time budget",
                timings["total_s"] <= args.budget_s,
                f"{timings['total_s']:.0f} s of {args.budget_s:.0f} s (model build {timings['model_s']:.0f} s)",
            )
        )
    notes = []
    if not cfg.hardware.use_vllm:
        notes.append(
            "generation ran with transformers generate(), not vLLM: at this model size its decode loop is "
            "bound by per-token overheads, so the projection is for a run that generates the same way; "
            "the paper's vLLM run is nearer the floor line"
        )
    if sampler.peak_mib:
        measured = max(sampler.peak_mib.values()) * 2**20 / 1e9
        notes.append(
            f"memory: the plan estimated {choice.memory.total_gb:.1f} GB a training GPU; nvidia-smi measured a peak "
            f"of {measured:.1f} GB (all processes on the GPU, vLLM's pool included)"
        )
    if device and here is None:
        notes.append(
            f"{device} is not in openrs/gpu_check/projection.py's table; no projection "
            "(pass --gpu-tflops and --gpu-bandwidth-gbs)"
        )
    result = CheckResult(
        dry_run=False,
        env=env,
        overrides=overrides,
        ran=plan.describe(cfg, backends),
        model=facts,
        checks=checks,
        steps=steps,
        steady=steady,
        memory=memory,
        device_peak_mib=sampler.peak_mib,
        weights=weights,
        timings=timings,
        check_shape=check_shape,
        target_shape=target_shape,
        here=here,
        there=gpus.A40,
        projection=proj,
        factors={
            "work": inputs.work_factors(check_shape, target_shape, cost),
            "steps": target_cfg.grpo.max_steps,
        },
        notes=notes,
    )
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
