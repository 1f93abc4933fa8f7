"""What one evaluation job evaluates: a hub/local model, or checkpoints of a training run.

A :class:`Target` names the weights (hub id or directory, with a revision), the tokenizer to render prompts
with, the training step (for TensorBoard) and the directory its results go to. For a run directory, weights
come from ``checkpoints/checkpoint-<step>/`` (only those with a ``COMPLETE`` marker) or ``final/``; the
tokenizer from the checkpoint itself when it holds one, else the run's ``final/``, else the model the run
was trained from (read from ``.hydra/config.yaml``; the tiny model is rebuilt from its recipe if needed).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openrs.records.run_dir import RunDir
from openrs.training.checkpoints import checkpoint_step, complete_checkpoints

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer_config.json",)


@dataclass(frozen=True)
class Target:
    """One model to evaluate and where its results go."""

    label: str
    weights: str
    revision: str | None
    tokenizer: str
    tokenizer_revision: str | None
    eval_dir: Path
    step: int | None = None
    run: Path | None = None
    checkpoint: str | None = None

    def metadata(self) -> dict[str, Any]:
        """Fields recorded at the top of ``results.json``."""
        return {
            "label": self.label,
            "model": self.weights,
            "revision": self.revision,
            "tokenizer": self.tokenizer,
            "tokenizer_revision": self.tokenizer_revision,
            "run": str(self.run) if self.run is not None else None,
            "checkpoint": self.checkpoint,
            "step": self.step,
        }


def model_label(model: str, revision: str | None) -> str:
    """``model`` or ``model@<first 8 characters of the revision>``."""
    return f"{model}@{revision[:8]}" if revision else model


def model_target(
    model: str, revision: str | None, tokenizer: str | None, eval_dir: Path, label: str | None = None
) -> Target:
    """A hub id or local directory; the tokenizer comes from the same place unless one is given."""
    return Target(
        label=label or model_label(model, revision),
        weights=model,
        revision=revision,
        tokenizer=tokenizer or model,
        tokenizer_revision=revision if tokenizer is None else None,
        eval_dir=eval_dir,
    )


def _has_tokenizer(path: Path) -> bool:
    return all((path / name).is_file() for name in TOKENIZER_FILES)


def run_base_model(run: Path) -> tuple[str, str | None]:
    """The model a run was trained from, from its saved ``.hydra/config.yaml`` (tiny, warm start: its cached
    directory, built again if the cache was cleared)."""
    from omegaconf import OmegaConf

    from openrs.config import ModelConfig
    from openrs.training.warmstart import prepare_model

    saved = RunDir(run).hydra_config
    if not saved.is_file():
        raise FileNotFoundError(f"{run}: no .hydra/config.yaml to find the run's model and tokenizer in")
    node = OmegaConf.load(saved).get("model")
    if node is None:
        raise KeyError(f"{saved}: no model section")
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), node))
    assert isinstance(cfg, ModelConfig)
    return prepare_model(cfg), cfg.revision


def run_tokenizer(run: Path, weights: Path) -> tuple[str, str | None]:
    """The checkpoint's own tokenizer, else the run's ``final/``, else the run's base model's."""
    for place in (weights, RunDir(run).final):
        if _has_tokenizer(place):
            return str(place), None
    return run_base_model(run)


def final_step(run: Path) -> int | None:
    """The global step of ``final/``: from ``summary.json``, else the newest complete checkpoint."""
    summary = RunDir(run).summary
    if summary.is_file():
        step = json.loads(summary.read_text()).get("global_step")
        if isinstance(step, int):
            return step
    found = complete_checkpoints(RunDir(run).checkpoints)
    return checkpoint_step(found[-1]) if found else None


def select_checkpoints(run: Path, selection: str | list[int]) -> list[tuple[str, Path, int | None]]:
    """(name, directory, step) of the selected checkpoints, oldest first."""
    available = complete_checkpoints(RunDir(run).checkpoints)
    by_step = {checkpoint_step(p): p for p in available}
    if selection == "final":
        final = RunDir(run).final
        if not any((final / name).is_file() for name in ("config.json", "adapter_config.json")):
            raise FileNotFoundError(f"{run}: no final/ model (the run has not finished)")
        return [("final", final, final_step(run))]
    if selection in ("all", "latest"):
        if not available:
            raise FileNotFoundError(f"{run}: no complete checkpoints under checkpoints/")
        chosen = available if selection == "all" else available[-1:]
        return [(p.name, p, checkpoint_step(p)) for p in chosen]
    missing = [s for s in selection if s not in by_step]
    if missing:
        raise FileNotFoundError(
            f"{run}: no complete checkpoint for steps {missing}; available: {sorted(by_step) or 'none'}"
        )
    return [(by_step[s].name, by_step[s], s) for s in selection]


def run_targets(run: Path, selection: str | list[int], out_root: Path, tokenizer: str | None = None) -> list[Target]:
    """One target per selected checkpoint of ``run``; results go to ``out_root/<checkpoint name>/``."""
    if not run.is_dir():
        raise FileNotFoundError(f"run={run}: not a directory")
    targets = []
    for name, path, step in select_checkpoints(run, selection):
        tok, tok_rev = (tokenizer, None) if tokenizer else run_tokenizer(run, path)
        targets.append(
            Target(
                label=name,
                weights=str(path),
                revision=None,
                tokenizer=tok,
                tokenizer_revision=tok_rev,
                eval_dir=out_root / name,
                step=step,
                run=run,
                checkpoint=name,
            )
        )
    return targets
