"""What ``python -m openrs.evaluate`` does once Hydra has composed the config.

1. Validate the config and load the benchmarks (before any model, so a bad path fails fast).
2. Plan the targets: one model (``model=``, with ``revision=``), or the selected checkpoints of ``run=``.
3. For each target: build the backend, sample, score, write ``<eval dir>/<benchmark>.jsonl`` and
   ``results.json``, print its table; for a run, add the pass@k scalars to ``<run>/tb`` at the checkpoint's step.
4. Print the models x benchmarks table (the paper's layout). Under ``--multirun``, :class:`ComparisonCallback`
   prints one table over all jobs at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from openrs.config.base import value_of
from openrs.evaluate.backends import Backend, SamplingSettings, TransformersBackend, VllmBackend
from openrs.evaluate.benchmarks import BenchmarkSpec, Problem, get_spec, load_benchmark
from openrs.evaluate.config import EvalConfig, benchmark_names, checkpoint_selection, validate
from openrs.evaluate.environment import environment
from openrs.evaluate.report import format_comparison
from openrs.evaluate.runner import EvalSettings, evaluate
from openrs.evaluate.significance import format_versus, outcomes_of_eval_dir, versus
from openrs.evaluate.targets import Target, model_label, model_target, run_targets
from openrs.records.atomic import write_json_atomic
from openrs.records.run_dir import RunDir

log = logging.getLogger("openrs.evaluate")

LOCAL_SUFFIXES = (".jsonl", ".parquet", ".json")


def benchmark_path(cfg: EvalConfig, name: str) -> Path | None:
    """The local file for ``name`` (``benchmark_paths`` first, then ``benchmark_dir``), or None for the hub."""
    explicit = cfg.benchmark_paths.get(name)
    if explicit is not None:
        return Path(explicit)
    if cfg.benchmark_dir is None:
        return None
    for suffix in LOCAL_SUFFIXES:
        candidate = Path(cfg.benchmark_dir) / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"benchmark_dir={cfg.benchmark_dir} has no {name}{{{','.join(LOCAL_SUFFIXES)}}}; "
        f"set benchmark_paths.{name} or drop it from benchmarks"
    )


def load_benchmarks(cfg: EvalConfig) -> list[tuple[BenchmarkSpec, list[Problem]]]:
    """Every selected benchmark's problems (the first ``limit`` of each)."""
    loaded = []
    for name in benchmark_names(cfg):
        path = benchmark_path(cfg, name)
        problems = load_benchmark(name, path, limit=cfg.limit)
        origin = path or get_spec(name).hub_id or "its generator"
        log.info("%s: %d problems from %s", name, len(problems), origin)
        loaded.append((get_spec(name), problems))
    return loaded


def eval_settings(cfg: EvalConfig) -> EvalSettings:
    sampling = SamplingSettings(
        n=cfg.n_samples,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens,
        seed=cfg.seed,
    )
    return EvalSettings(
        sampling=sampling,
        ks=tuple(cfg.pass_k) if cfg.pass_k else None,
        confidence=cfg.confidence,
        n_resamples=cfg.n_resamples,
        bootstrap_seed=cfg.seed,
        score_workers=cfg.score_workers,
        score_timeout_s=cfg.score_timeout,
    )


def backend_name(cfg: EvalConfig) -> str:
    """``auto`` becomes vllm where vLLM is installed and CUDA is visible, transformers otherwise."""
    name = value_of(cfg.backend)
    if name != "auto":
        return name
    if importlib.util.find_spec("vllm") is None:
        return "transformers"
    import torch

    return "vllm" if torch.cuda.is_available() else "transformers"


def make_backend(cfg: EvalConfig, target: Target) -> Backend:
    """Load ``target``'s weights and tokenizer into the configured backend."""
    name = backend_name(cfg)
    if name == "vllm":
        if (Path(target.weights) / "adapter_config.json").is_file():
            raise ValueError(
                f"{target.weights} holds a LoRA adapter, which the vLLM backend does not load; "
                "use backend=transformers (it applies the adapter to its base model) or merge it first"
            )
        extra: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code}
        if target.tokenizer != target.weights:
            extra.update(tokenizer=target.tokenizer, tokenizer_revision=target.tokenizer_revision)
        return VllmBackend(target.weights, target.revision, cfg.vllm, dtype=value_of(cfg.dtype), **extra)
    import torch

    from openrs.config import ModelConfig
    from openrs.models import load_model, load_tokenizer

    weights = ModelConfig(
        name_or_path=target.weights,
        revision=target.revision,
        dtype=cfg.dtype,
        attn_implementation=None,  # transformers' default: evaluation runs any dtype, flash-attn needs bf16/fp16
        gradient_checkpointing=False,
        trust_remote_code=cfg.trust_remote_code,
    )
    tokenizer = ModelConfig(
        name_or_path=target.tokenizer,
        revision=target.tokenizer_revision,
        trust_remote_code=cfg.trust_remote_code,
    )
    model = load_model(weights)
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return TransformersBackend(model.to(device), load_tokenizer(tokenizer), cfg.batch_size)


def plan_targets(cfg: EvalConfig, hydra_dir: Path) -> list[Target]:
    """The model, or the run's selected checkpoints, each with its results directory."""
    if cfg.run is not None:
        run = Path(cfg.run).expanduser()
        out_root = Path(cfg.output_dir) if cfg.output_dir else RunDir(run).eval
        targets = run_targets(run, checkpoint_selection(cfg.checkpoints), out_root, cfg.tokenizer)
        if cfg.label:
            targets = [dataclasses.replace(t, label=f"{cfg.label} {t.label}") for t in targets]
        return targets
    assert cfg.model is not None
    out = Path(cfg.output_dir) if cfg.output_dir else hydra_dir
    return [model_target(cfg.model, cfg.revision, cfg.tokenizer, out, cfg.label)]


def config_record(cfg: EvalConfig) -> dict[str, Any]:
    """The evaluation config as plain JSON values."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=value_of))


def robust_samples(cfg: EvalConfig) -> dict[str, int] | None:
    """Samples per problem by benchmark under ``protocol=robust`` (never fewer than ``n_samples``); else None."""
    if value_of(cfg.protocol) != "robust":
        return None
    return {name: max(cfg.n_samples, cfg.robust_samples.get(name, cfg.n_samples)) for name in benchmark_names(cfg)}


def baseline_target(cfg: EvalConfig, targets: Sequence[Target], hydra_dir: Path) -> Target | None:
    """``baseline=``: the model every target is compared with; its results go beside the targets'."""
    if cfg.baseline is None:
        return None
    root = RunDir(targets[0].run).eval if targets[0].run is not None else Path(hydra_dir)
    label = f"baseline {model_label(cfg.baseline, cfg.baseline_revision)}"
    return model_target(cfg.baseline, cfg.baseline_revision, None, Path(cfg.output_dir or root) / "baseline", label)


def run_evaluation(cfg: EvalConfig, hydra_dir: Path) -> list[Path]:
    """Evaluate every target (and the baseline, first); returns the targets' ``results.json`` paths."""
    validate(cfg)
    benchmarks = load_benchmarks(cfg)
    targets = plan_targets(cfg, Path(hydra_dir))
    settings = eval_settings(cfg)
    samples = robust_samples(cfg)
    env = environment(
        backend_name(cfg),
        str(value_of(cfg.dtype)),
        cfg.vllm.tensor_parallel_size,
        cfg.seed,
        {name: (samples or {}).get(name, cfg.n_samples) for name in benchmark_names(cfg)},
    )
    baseline = baseline_target(cfg, targets, Path(hydra_dir))
    log.info("evaluating %d target(s) with %s: %s", len(targets), backend_name(cfg), [t.label for t in targets])
    run = targets[0].run

    def run_target(target: Target) -> Any:
        backend = make_backend(cfg, target)
        try:
            metadata = {**target.metadata(), "config": config_record(cfg), "environment": env}
            report = evaluate(backend, benchmarks, settings, target.eval_dir, metadata, samples)
        finally:
            backend.close()
        print(
            f"\n{target.label} ({target.eval_dir})\n{report.table()}{_seed_protocol_line(report.results)}",
            flush=True,
        )
        return report

    base_outcomes = None
    if baseline is not None:
        base_outcomes = {name: r.outcomes for name, r in run_target(baseline).benchmarks.items()}
    with contextlib.ExitStack() as stack:
        curves = None
        if run is not None and cfg.tensorboard:
            from openrs.evaluate.tensorboard import EvalCurves

            curves = stack.enter_context(EvalCurves(RunDir(run).tb))
        written, results = [], {}
        for target in targets:
            report = run_target(target)
            if base_outcomes is not None:
                assert baseline is not None
                diffs = versus(base_outcomes, {n: r.outcomes for n, r in report.benchmarks.items()})
                print(f"\n{format_versus(diffs, target.label, baseline.label)}", flush=True)
                report.results["vs_baseline"] = {
                    "baseline": baseline.label,
                    **{n: d.to_dict() for n, d in diffs.items()},
                }
                write_json_atomic(target.eval_dir / "results.json", report.results)
            written.append(target.eval_dir / "results.json")
            results[target.label] = report.results
            if curves is not None:
                if target.step is None:
                    log.warning("%s: no training step known; not written to TensorBoard", target.label)
                else:
                    curves.add(report.results, target.step)
    header = "checkpoint" if run is not None else "model"
    print(f"\npass@1 (%), {header}s x benchmarks\n{format_comparison(results, row_header=header)}", flush=True)
    return written


def _seed_protocol_line(results: dict[str, Any]) -> str:
    """Under protocol=robust: the seed's single-sample figure of every benchmark, for the record."""
    seed = {n: b["seed_protocol"]["pass@1"] for n, b in results["benchmarks"].items() if "seed_protocol" in b}
    if not seed:
        return ""
    return "\nseed protocol (first sample only): " + ", ".join(f"{n} {100 * v:.1f}" for n, v in seed.items())


def comparison_of(paths: Sequence[Path]) -> str:
    """Models x benchmarks over ``results.json`` files; rows named by label (with the run when labels repeat)."""
    loaded = [(p, json.loads(Path(p).read_text())) for p in paths]
    labels = [str(data.get("label") or Path(p).parent) for p, data in loaded]
    rows: dict[str, dict[str, Any]] = {}
    for label, (path, data) in zip(labels, loaded, strict=True):
        if labels.count(label) > 1:
            label = f"{data.get('run') or Path(path).parent} {label}"
        rows[label] = data
    return format_comparison(rows)


class ComparisonCallback(Callback):
    """At the end of a ``--multirun``, print one models x benchmarks table over every job's results."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        if job_return.status == JobStatus.COMPLETED and isinstance(job_return.return_value, list):
            self.paths += [Path(p) for p in job_return.return_value]

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        # Jobs launched elsewhere (SLURM) report nothing here; their results sit under the sweep dir.
        found = self.paths + sorted(Path(config.hydra.sweep.dir).rglob("results.json"))
        paths = [p for p in dict.fromkeys(p.resolve() for p in found if p.is_file()) if p.parent.name != "baseline"]
        if paths:
            print(f"\npass@1 (%), all jobs\n{comparison_of(paths)}", flush=True)
        if len(paths) > 1:  # every job against the first, problem by problem
            base = outcomes_of_eval_dir(paths[0].parent)
            base_label = json.loads(paths[0].read_text()).get("label") or str(paths[0].parent)
            for path in paths[1:]:
                label = json.loads(path.read_text()).get("label") or str(path.parent)
                print(
                    f"\n{format_versus(versus(base, outcomes_of_eval_dir(path.parent)), label, base_label)}",
                    flush=True,
                )
