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

from openrs.evaluate.backends import Backend, SamplingSettings, TransformersBackend, VllmBackend, VllmSettings
from openrs.evaluate.benchmarks import BenchmarkSpec, Problem, get_spec, load_benchmark
from openrs.evaluate.config import EvalConfig, benchmark_names, checkpoint_selection, validate
from openrs.evaluate.report import format_comparison
from openrs.evaluate.runner import EvalSettings, evaluate
from openrs.evaluate.targets import Target, model_target, run_targets

log = logging.getLogger("openrs.evaluate")

LOCAL_SUFFIXES = (".jsonl", ".parquet", ".json")


def _value(x: Any) -> Any:
    return getattr(x, "value", x)


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
    name = _value(cfg.backend)
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
        settings = VllmSettings(
            tensor_parallel_size=cfg.vllm.tensor_parallel_size,
            data_parallel_size=cfg.vllm.data_parallel_size,
            gpu_memory_utilization=cfg.vllm.gpu_memory_utilization,
            max_model_len=cfg.vllm.max_model_len,
            dtype=_value(cfg.dtype),
            enforce_eager=cfg.vllm.enforce_eager,
            extra=extra,
        )
        return VllmBackend(target.weights, target.revision, settings)
    import torch

    from openrs.config import ModelConfig
    from openrs.models import load_model, load_tokenizer

    weights = ModelConfig(
        name_or_path=target.weights,
        revision=target.revision,
        dtype=cfg.dtype,
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
        out_root = Path(cfg.output_dir) if cfg.output_dir else run / "eval"
        targets = run_targets(run, checkpoint_selection(cfg.checkpoints), out_root, cfg.tokenizer)
        if cfg.label:
            targets = [dataclasses.replace(t, label=f"{cfg.label} {t.label}") for t in targets]
        return targets
    assert cfg.model is not None
    out = Path(cfg.output_dir) if cfg.output_dir else hydra_dir
    return [model_target(cfg.model, cfg.revision, cfg.tokenizer, out, cfg.label)]


def config_record(cfg: EvalConfig) -> dict[str, Any]:
    """The evaluation config as plain JSON values."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=_value))


def run_evaluation(cfg: EvalConfig, hydra_dir: Path) -> list[Path]:
    """Evaluate every target; returns the ``results.json`` paths written."""
    validate(cfg)
    benchmarks = load_benchmarks(cfg)
    targets = plan_targets(cfg, Path(hydra_dir))
    settings = eval_settings(cfg)
    log.info(
        "evaluating %d target(s) with %s: %s", len(targets), backend_name(cfg), [t.label for t in targets]
    )
    run = targets[0].run
    with contextlib.ExitStack() as stack:
        curves = None
        if run is not None and cfg.tensorboard:
            from openrs.evaluate.tensorboard import EvalCurves

            curves = stack.enter_context(EvalCurves(run / "tb"))
        written, results = [], {}
        for target in targets:
            backend = make_backend(cfg, target)
            try:
                metadata = {**target.metadata(), "config": config_record(cfg)}
                report = evaluate(backend, benchmarks, settings, target.eval_dir, metadata)
            finally:
                backend.close()
            written.append(target.eval_dir / "results.json")
            results[target.label] = report.results
            print(f"\n{target.label} ({target.eval_dir})\n{report.table()}", flush=True)
            if curves is not None:
                if target.step is None:
                    log.warning("%s: no training step known; not written to TensorBoard", target.label)
                else:
                    curves.add(report.results, target.step)
    header = "checkpoint" if run is not None else "model"
    print(
        f"\npass@1 (%), {header}s x benchmarks\n{format_comparison(results, row_header=header)}", flush=True
    )
    return written


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
        paths = list(dict.fromkeys(p.resolve() for p in found if p.is_file()))
        if paths:
            print(f"\npass@1 (%), all jobs\n{comparison_of(paths)}", flush=True)
