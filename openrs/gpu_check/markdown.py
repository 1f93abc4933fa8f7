"""The check's report as Markdown (``benchmarks/RESULTS_gpu.md``): environment, checks, steps, memory, projection."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from openrs.gpu_check.measure import StepFigures
from openrs.gpu_check.projection import StepShape
from openrs.gpu_check.report import DASH, GIB, CheckResult, devices, fmt


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _versions(env: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v or 'not installed'}" for k, v in env.get("versions", {}).items())


def _memory_rows(result: CheckResult) -> list[list[str]]:
    rows = [
        [str(m["rank"]), fmt(m["cuda_max_memory_allocated"] / GIB), fmt(m["cuda_max_memory_reserved"] / GIB)]
        for m in result.memory
    ]
    return rows or [[DASH, DASH, DASH]]


STEP_HEADER = [
    "step",
    "wall s",
    "TRL step_time s",
    "generation s",
    "reward s",
    "loss fwd/bwd s",
    "other s",
    "completion tokens",
    "gen tokens/s",
    "mean len",
    "clipped",
]


def _step_row(s: StepFigures) -> list[str]:
    return [
        str(s.step),
        fmt(s.wall),
        fmt(s.step_time),
        fmt(s.generation),
        fmt(s.reward),
        fmt(s.loss),
        fmt(s.other),
        fmt(s.completion_tokens, 0),
        fmt(s.generation_tokens_per_s, 0),
        fmt(s.mean_length, 0),
        fmt(s.clipped_ratio),
    ]


def _steady_row(steady: dict[str, float | None]) -> list[str]:
    return [
        "mean",
        fmt(steady.get("wall")),
        fmt(steady.get("step_time")),
        fmt(steady.get("generation")),
        fmt(steady.get("reward")),
        fmt(steady.get("loss")),
        fmt(steady.get("other")),
        fmt(steady.get("completion_tokens"), 0),
        fmt(steady.get("generation_tokens_per_s"), 0),
        fmt(steady.get("mean_length"), 0),
        DASH,
    ]


def _shape_rows(check: StepShape | None, target: StepShape | None) -> list[list[str]]:
    def col(s: StepShape | None, attr: str, digits: int = 0) -> str:
        return fmt(getattr(s, attr), digits) if s is not None else DASH

    labels = [
        ("generation rounds a step", "rounds"),
        ("completions a round (all ranks)", "completions_per_round"),
        ("decode steps a round (longest completion)", "decode_steps"),
        ("mean completion tokens", "completion_tokens"),
        ("mean prompt tokens", "prompt_tokens"),
        ("training ranks", "training_ranks"),
    ]
    return [[label, col(check, attr), col(target, attr)] for label, attr in labels]


def _projection_section(r: CheckResult) -> list[str]:
    p, target = r.projection, r.target_name
    out = [f"## Projection: {target}, {fmt(p.steps if p else r.factors.get('steps'))} steps on 4x A40", ""]
    out.append(
        "**This is a projection, not a measurement.** It scales each phase of the check's measured step by the work "
        f"{target}'s step holds and by the ratio of published peak figures of the two GPUs, as "
        "`openrs/gpu_check/projection.py` computes it:"
    )
    out += [
        "",
        "- generation: x bytes read over a step's decode steps (weights every decode step + each sequence's KV cache "
        "as it grows; target / check) x memory bandwidth (this GPU / A40): sampling at these batch sizes is "
        "bandwidth-bound, so what counts is how many sequential decode steps a step takes and what each reads, "
        "not the number of tokens;",
        "- loss forward/backward: x prompt+completion tokens per training rank (target / check) x dense bf16 "
        "TFLOPS (this GPU / A40);",
        "- other (optimizer step): x training ranks (check / target), as ZeRO-2 shards it, x bandwidth "
        "(this GPU / A40);",
        "- reward: x completion tokens per rank (target / check); CPU work, not scaled by the GPU;",
        "- then hours = seconds per step x steps / 3600, and cost = hours x GPUs x price per GPU-hour.",
        "",
        _table(["step shape", "this check", target], _shape_rows(r.check_shape, r.target_shape)),
        "",
    ]
    work = r.factors.get("work", {})
    gpu = p.factors if p else {}
    measured = r.steady
    rows = []
    for phase in ("generation", "reward", "loss", "other"):
        rows.append(
            [
                phase,
                fmt(measured.get(phase)),
                fmt(work.get(phase), 3),
                fmt(gpu[phase].gpu, 3) if phase in gpu else DASH,
                fmt(getattr(p.per_step, phase)) if p else DASH,
            ]
        )
    rows.append(
        [
            "step",
            fmt(sum_or_none(measured.get(k) for k in ("generation", "reward", "loss", "other"))),
            "",
            "",
            fmt(p.per_step.total) if p else DASH,
        ]
    )
    out += [
        _table(["phase", "measured s/step", "work ratio", "GPU ratio", f"projected s/step ({target})"], rows),
        "",
    ]
    if p:
        out += [
            f"- **Projected: {fmt(p.hours, 1)} h, ${fmt(p.cost_usd, 0)}** for {p.steps} steps on {p.gpus} GPUs at "
            f"${p.price_per_gpu_hour}/GPU-h.",
            f"- With generation at its floor instead (the A40's full memory bandwidth, {fmt(p.generation_floor_s, 1)} "
            f"s/step; no engine is faster): {fmt(p.floor_hours, 1)} h, ${fmt(p.floor_cost_usd, 0)}.",
            f"- This check's generation moved its decode bytes at {100 * p.check_bandwidth_share:.2g}% of this GPU's "
            "peak bandwidth (the projection assumes the A40 run reaches the same share; the floor assumes 100%).",
        ]
    else:
        out.append("- Projected hours and cost: " + DASH + (" (dry run: nothing measured)" if r.dry_run else ""))
    out.append("- For scale: the paper reports its runs took under 24 h on the 4x A40 node, about $42 at $0.44/GPU-h.")
    out += ["", "GPU figures used (dense bf16 tensor TFLOPS, memory bandwidth):", ""]
    for spec in (r.here, r.there):
        if spec is not None:
            out.append(f"- {spec.name}: {spec.bf16_tflops} TFLOPS, {spec.bandwidth_gbs:,.0f} GB/s ({spec.source})")
    if r.here is None:
        out.append(
            f"- this GPU: {DASH} ("
            + ("dry run" if r.dry_run else "not in the table: pass --gpu-tflops and --gpu-bandwidth-gbs")
            + ")"
        )
    out += [
        "",
        "Assumptions:",
        "",
        f"- the check's model has {target}'s architecture (DeepSeek-R1-Distill-Qwen-1.5B's), so one decode cost "
        "(weights and KV cache per token) serves both;",
        f"- every {target} completion runs to its {fmt(r.target_shape.decode_steps if r.target_shape else None, 0)}-token "
        "budget (an upper bound: a trained model stops earlier), and its prompts are as long as the check's;",
        "- both GPUs reach the same fraction of their peak. If this check generated with transformers, whose decode "
        "loop at this model size is bound by kernel-launch overhead rather than bandwidth, the generation projection "
        "is for a run that also generates with transformers and overstates a vLLM run (the paper's); the floor line "
        "bounds it from below;",
        "- the generation phase includes the no-grad reference-model forward, which is compute-bound but is scaled "
        "with generation; the vLLM weight sync, the 4 GPUs' interconnect and ZeRO-2's gradient traffic are not "
        "modelled;",
        "- smaller micro-batches on the A40 ranks (6 sequences, against the check's) are assumed to run as "
        "efficiently; the rewards' CPU has as many cores per rank as this machine.",
        "",
    ]
    return out


def sum_or_none(values: Any) -> float | None:
    values = list(values)
    return None if not values or None in values else sum(values)


def markdown(r: CheckResult) -> str:
    """The report file (benchmarks/RESULTS_gpu.md)."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    status = "DRY RUN" if r.dry_run else ("PASS" if r.ok else "FAIL")
    out = [f"# GPU check: {status}", ""]
    if r.dry_run:
        out += [
            "**Dry run:** no GPU step ran. Every measured figure is a placeholder (" + DASH + "); the config, "
            "model shape, tokenizer, GRPOConfig, DeepSpeed config and the projection's arithmetic are real.",
            "",
        ]
    out += [
        f"Written by `{r.env.get('command', 'python -m openrs.gpu_check')}` on {when}; total "
        f"{fmt(r.timings.get('total_s'), 0)} s (model build {fmt(r.timings.get('model_s'), 0)} s, training run "
        f"{fmt(r.timings.get('run_s'), 0)} s).",
        "",
        "Overrides: `" + " ".join(r.overrides) + "`",
        "",
        "## Machine",
        "",
        _table(
            ["", ""],
            [
                ["device(s)", devices(r.env)],
                ["driver / CUDA (torch)", f"{r.env.get('driver') or DASH} / {r.env.get('cuda') or DASH}"],
                ["Python", f"{r.env.get('python')} ({r.env.get('platform')})"],
                ["packages", _versions(r.env)],
            ],
        ),
        "",
        "## What ran",
        "",
        _table(["", ""], [[k, v] for k, v in {**r.ran, **{k: str(v) for k, v in r.model.items()}}.items()]),
        "",
        "## Checks",
        "",
        _table(["check", "result", "detail"], [[c.name, c.status, c.detail] for c in r.checks]),
        "",
        "## Per step",
        "",
        _table(STEP_HEADER, [_step_row(s) for s in r.steps] + [_steady_row(r.steady)]),
        "",
        f"`mean`: steps 2 to {len(r.steps)} (the first pays for CUDA kernels, allocator growth and caches)."
        if len(r.steps) > 1
        else "`mean`: the only step.",
        "",
        "Where the seconds come from: `TRL step_time` is TRL 1.16's own `step_time` metric (time inside "
        "`training_step` over the step's micro-steps). TRL's method timings (`trl.extras.profiling`, "
        "`profiling/Time taken: ...`) are sent only to W&B, MLflow or Trackio and never reach the log history, so "
        "the split is openrs's (`openrs/records/observe.py`, logged every run as `perf/generation_seconds` and "
        "`perf/reward_seconds` through TRL's `log_metric` hook): generation runs from the micro-step's start "
        "(Trainer callback) to the first reward function's call, reward from there to the last one's return, "
        "loss fwd/bwd is `step_time` minus both, and other is the mean wall time per step (the Trainer's `train_runtime` over the steps) minus "
        "`step_time` (optimizer step, clipping, callbacks). gen tokens/s is completion tokens over the generation "
        "phase.",
        "",
        "## Memory",
        "",
        _table(["rank", "max allocated GiB", "max reserved GiB"], _memory_rows(r)),
        "",
        "Per rank: `torch.cuda.max_memory_allocated` / `max_memory_reserved` (torch's allocator; vLLM's own pool is "
        "outside it). All processes on each GPU, sampled by nvidia-smi every 2 s: "
        + (", ".join(f"GPU {k}: {v:,} MiB" for k, v in sorted(r.device_peak_mib.items())) or DASH)
        + ".",
        "",
    ]
    if r.weights is not None:
        w = r.weights
        out += [
            "## Weights",
            "",
            f"{w.changed_tensors:,} of {w.tensors:,} tensors changed ({w.changed_elements:,} of {w.elements:,} "
            f"elements, largest change {w.max_abs_change:.3g}); non-finite tensors: {len(w.nonfinite)}.",
            "",
        ]
    out += _projection_section(r)
    if r.notes:
        out += ["## Notes", "", *[f"- {n}" for n in r.notes], ""]
    return "\n".join(out)
