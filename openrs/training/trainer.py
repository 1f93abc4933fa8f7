"""TRL's GRPOTrainer for a run, assembled from its parts: rewards, problems, tokenizer, model, GRPOConfig, callbacks.

Assembly only. The process's own settings (threads, seed, TensorBoard dir) are made before it and what the trainer
was built with is recorded after it, both in openrs.training.loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openrs import data, models
from openrs.config import RunConfig
from openrs.records import console, metrics_log, tb
from openrs.records.run_dir import RunDir
from openrs.rewards import build_reward_funcs
from openrs.training import checkpoints, disk
from openrs.training.grpo_config import run_precision, to_grpo_config, vllm_dtype

if TYPE_CHECKING:
    from trl import GRPOTrainer


def to_peft_config(cfg: RunConfig) -> Any:
    """peft.LoraConfig for TRL's ``peft_config`` (Hydra builds it from ``peft.lora``), or None for full fine-tuning."""
    if not cfg.peft.enabled:
        return None
    from hydra.utils import instantiate

    return instantiate(dataclasses.asdict(cfg.peft.lora), _convert_="all")


def _vllm_on_cpu(cfg: RunConfig, paths: RunDir, model: Any) -> contextlib.AbstractContextManager:
    """vLLM on CPU (hardware=cpu_vllm) needs its stand-in weight transfer (openrs.training.vllm_cpu); else nothing."""
    hw = cfg.hardware
    if not (hw.use_vllm and hw.use_cpu):
        return contextlib.nullcontext()
    from openrs.training.vllm_cpu import cpu_weight_transfer

    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    return cpu_weight_transfer(paths.vllm_weights, vllm_dtype(cfg), hw.vllm_cpu_kv_cache_gb, tied)


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()  # accelerate's logger puts "[RANK n] " in front


@contextlib.contextmanager
def _quiet_reference_kwargs_warning() -> Iterator[None]:
    """TRL warns that ``model_init_kwargs`` are ignored when the policy comes loaded; they are not: its reference
    model is built with them (openrs.training.grpo_config.reference_init_kwargs). Drop that one line."""
    logger = logging.getLogger("trl.trainer.grpo_trainer")
    quiet = _DropMessage("You passed `model_init_kwargs`")
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def build_grpo_trainer(cfg: RunConfig, run_dir: Path) -> GRPOTrainer:
    """Rewards, problems, tokenizer and model wired into TRL's GRPOTrainer with openrs's callbacks."""
    from transformers import PrinterCallback
    from trl import GRPOTrainer

    paths = RunDir(run_dir)
    # Validates every term's parameters before anything heavy loads; the weights go to GRPOConfig.reward_weights.
    reward_funcs, _ = build_reward_funcs(cfg.reward)
    # Diagnostics, phase times and cost ride along the reward calls; HParams and samples go to TensorBoard.
    reward_funcs, monitors = tb.build_monitoring(cfg, run_dir, reward_funcs)
    problems = data.load_problems(cfg.dataset)  # before the model: a bad dataset fails before any model loads
    tokenizer = models.load_tokenizer(cfg.model)
    problems = data.drop_long_prompts(problems, tokenizer, cfg.dataset.max_prompt_length)
    model = models.load_model(cfg.model, run_precision(cfg).weights_dtype, cfg.hardware.use_cpu)

    with _vllm_on_cpu(cfg, paths, model), _quiet_reference_kwargs_warning():
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward_funcs,
            args=to_grpo_config(cfg, run_dir),
            train_dataset=problems,
            processing_class=tokenizer,
            peft_config=to_peft_config(cfg),
            callbacks=[
                metrics_log.MetricsFileCallback(paths.metrics),
                console.ProgressLogCallback(),
                checkpoints.CompleteMarkerCallback(cfg.grpo.keep_full_state, cfg.hardware.save_timeout_s),
                disk.DiskSpaceCallback(paths.checkpoints, deepspeed=bool(cfg.hardware.deepspeed)),
                *monitors,
            ],
        )
    for cb in monitors:
        if isinstance(cb, tb.TensorBoardRecords):
            cb.bind(trainer)
    trainer.remove_callback(PrinterCallback)  # one compact line per log step instead of the full dict
    return trainer
