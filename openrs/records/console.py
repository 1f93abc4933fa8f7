"""What a person reads on the console: a short header, one line per step, the result.

The full resolved config goes to the run dir (``.hydra/config.yaml``), not the console; the noise of the
libraries underneath (progress bars of data preparation and weight loading, a deprecation warning TRL triggers
in transformers) is turned off where it is raised.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from transformers import TrainerCallback

from openrs.config import RunConfig
from openrs.config.base import value_of


def header(cfg: RunConfig, run_dir: Path) -> str:
    """Three lines: what runs, with what reward and budget, and where it writes."""
    hw, g = cfg.hardware, cfg.grpo
    built = " (warm-started locally)" if cfg.model.warm_start is not None else " (random init, built locally)"
    model = cfg.model.name_or_path + (built if cfg.model.tiny is not None else "")
    if cfg.model.revision:
        model += f"@{cfg.model.revision}"
    source = value_of(cfg.dataset.source)
    data = cfg.dataset.path or source
    terms = " + ".join(f"{name} x{t.weight:g}" for name, t in cfg.reward.terms.items())
    ranks = f"{hw.world_size} rank{'s' if hw.world_size != 1 else ''}" + (
        f" on {hw.nodes} nodes" if hw.nodes > 1 else ""
    )
    vllm = f", vLLM {value_of(hw.vllm_mode)}" if hw.use_vllm else ""
    steps = f"{g.max_steps} steps" if g.max_steps > 0 else f"{g.num_train_epochs:g} epochs"
    return (
        f"openrs: experiment {cfg.experiment} | model {model} | hardware {hw.name} ({ranks}{vllm})\n"
        f"openrs: data {data} ({source}) | reward {terms} | {steps}, {g.num_generations} completions per prompt, "
        f"lr {cfg.optimizer.lr:g}, seed {cfg.seed}\n"
        f"openrs: run dir {run_dir}"
    )


class ProgressLogCallback(TrainerCallback):
    """One line per log step on the console: step, total reward, each term, completion length."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 - transformers hook
        if not state.is_world_process_zero or not logs or "reward" not in logs:
            return
        terms = " ".join(
            f"{k.split('/')[1]}={v:.3f}" for k, v in logs.items() if k.startswith("rewards/") and k.endswith("/mean")
        )
        length = logs.get("completions/mean_length", float("nan"))
        print(
            f"step {state.global_step}/{state.max_steps}  reward={logs['reward']:.3f}  {terms}  len={length:.1f}",
            flush=True,
        )


def result(summary: dict) -> str:
    """The run's last line: steps, time, how the reward moved, where everything is."""
    if summary.get("preempted"):
        return (
            f"openrs: preempted at step {summary.get('global_step')}; the next start resumes ({summary.get('run_dir')})"
        )
    first = next((v for k, v in summary.items() if k.startswith("reward_first_")), None)
    last = next((v for k, v in summary.items() if k.startswith("reward_last_")), None)
    moved = (
        f"; mean reward {first:.3f} -> {last:.3f} (first vs last 10 steps)"
        if first is not None and last is not None
        else ""
    )
    seconds = summary.get("train_runtime_s")
    took = f" in {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
    return f"openrs: done, {summary.get('global_step')} steps{took}{moved}; run dir {summary.get('run_dir')}"


def quiet_libraries() -> None:
    """Turn off progress bars and known-harmless warnings of the libraries a run drives."""
    import datasets
    import transformers

    datasets.disable_progress_bars()  # Map/Filter bars over a few thousand rows tell nothing
    transformers.utils.logging.disable_progress_bar()  # "Loading weights", "Writing model shards"
    # TRL 1.16 still passes `gradient_checkpointing` to TrainingArguments, which transformers 5 renamed; the
    # warning repeats at every save and is TRL's to resolve.
    warnings.filterwarnings("ignore", message=r"`gradient_checkpointing.*` is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
