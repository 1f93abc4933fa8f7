"""``python -m openrs.train``: compose the config, then train with TRL's GRPOTrainer.

python -m openrs.train                                   # the CPU smoke experiment
python -m openrs.train experiment=rs2 reward=cosine      # the paper's run 2 with the cosine reward
python -m openrs.train experiment=rs3 lr=5e-6 max_len=4096
python -m openrs.train --cfg job experiment=rs1          # print the composed config
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from openrs.config import CONF_DIR, RunConfig, register_configs, to_run_config

if TYPE_CHECKING:
    from trl import GRPOConfig, GRPOTrainer

log = logging.getLogger("openrs.train")
REPO_DIR = CONF_DIR.parent


def _value(x: Any) -> Any:
    """Plain value of an Enum field."""
    return getattr(x, "value", x)


def to_grpo_config(cfg: RunConfig, run_dir: Path) -> GRPOConfig:
    """Map the composed run config onto TRL's GRPOConfig (optimizer + hardware + generation + logging)."""
    from trl import GRPOConfig

    opt, hw, g, model = cfg.optimizer, cfg.hardware, cfg.grpo, cfg.model
    scheduler_kwargs: dict[str, Any] = {}
    if opt.lr_scheduler_type == "cosine_with_min_lr" and opt.min_lr_rate is not None:
        scheduler_kwargs["min_lr_rate"] = opt.min_lr_rate
    deepspeed = None
    if hw.deepspeed:
        ds_path = Path(hw.deepspeed)
        deepspeed = str(ds_path if ds_path.is_absolute() else REPO_DIR / ds_path)
    vllm: dict[str, Any] = {}
    if hw.use_vllm:
        vllm = {
            "use_vllm": True,
            "vllm_mode": _value(hw.vllm_mode),
            "vllm_gpu_memory_utilization": hw.vllm_gpu_memory_utilization,
            "vllm_max_model_length": hw.vllm_max_model_length,
            "vllm_server_port": hw.vllm_server_port,
            "vllm_server_host": hw.vllm_server_host,
            "vllm_server_timeout": hw.vllm_server_timeout_s,
        }
    return GRPOConfig(
        output_dir=str(run_dir / "checkpoints"),
        run_name=str(run_dir),
        seed=cfg.seed,
        # optimizer and schedule
        learning_rate=opt.lr,
        optim=opt.optim,
        lr_scheduler_type=opt.lr_scheduler_type,
        lr_scheduler_kwargs=scheduler_kwargs,
        warmup_steps=opt.warmup_ratio,  # a float in [0, 1) is a ratio of total steps in transformers 5
        weight_decay=opt.weight_decay,
        adam_beta1=opt.adam_beta1,
        adam_beta2=opt.adam_beta2,
        adam_epsilon=opt.adam_epsilon,
        max_grad_norm=opt.max_grad_norm,
        # hardware
        use_cpu=hw.use_cpu,
        bf16=hw.bf16,
        per_device_train_batch_size=hw.per_device_train_batch_size,
        gradient_accumulation_steps=hw.gradient_accumulation_steps,
        deepspeed=deepspeed,
        dataloader_num_workers=hw.dataloader_num_workers,
        gradient_checkpointing=model.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if model.gradient_checkpointing else None,
        # GRPO and generation
        num_generations=g.num_generations,
        temperature=g.temperature,
        top_p=g.top_p,
        max_completion_length=g.max_completion_length,
        generation_kwargs=dict(g.generation_kwargs) or None,
        beta=g.beta,
        epsilon=g.epsilon,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        num_iterations=g.num_iterations,
        mask_truncated_completions=g.mask_truncated_completions,
        reward_weights=[float(t.weight) for t in cfg.reward.terms.values()],
        max_steps=g.max_steps,
        num_train_epochs=g.num_train_epochs,
        # checkpoints and logging
        save_strategy="steps",
        save_steps=g.save_steps,
        save_total_limit=g.save_total_limit,
        logging_steps=g.logging_steps,
        logging_first_step=True,
        log_completions=g.log_completions,
        report_to=["tensorboard"],
        disable_tqdm=True,
        ddp_backend=hw.ddp_backend,
        **vllm,
    )


def to_peft_config(cfg: RunConfig) -> Any:
    """peft.LoraConfig for TRL's ``peft_config``, or None for full fine-tuning."""
    if not cfg.peft.enabled:
        return None
    from peft import LoraConfig

    lora = cfg.peft.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout,
        target_modules=list(lora.target_modules),
        bias=lora.bias,
        task_type="CAUSAL_LM",
    )


def resolve_run_dir(cfg: RunConfig, hydra_run_dir: Path) -> Path:
    """``resume=<dir>`` continues that run; otherwise the run writes to Hydra's directory."""
    if cfg.resume:
        run_dir = Path(cfg.resume).expanduser()
        if not (run_dir / "checkpoints").is_dir() and not (run_dir / ".hydra").is_dir():
            raise FileNotFoundError(f"resume={cfg.resume}: not a run directory (no checkpoints/ or .hydra/)")
        return run_dir
    return hydra_run_dir


def build_trainer(cfg: RunConfig, run_dir: Path) -> GRPOTrainer:
    """Load rewards, tokenizer, data and model, and wire them into TRL's GRPOTrainer."""
    from transformers import PrinterCallback, set_seed
    from trl import GRPOTrainer

    from openrs import checkpoints, data, models, tb, tracking
    from openrs.rewards import build_reward_funcs

    run_dir.mkdir(parents=True, exist_ok=True)
    # transformers' TensorBoardCallback reads this; all events of a run go to <run dir>/tb.
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "tb")
    set_seed(cfg.seed)

    # Validates every term's parameters before anything heavy loads.
    reward_funcs, _ = build_reward_funcs(dataclasses.asdict(cfg.reward))
    monitor = None
    if cfg.diagnostics.enabled:  # diagnostics ride along a reward call (see openrs.tb); no term is added
        reward_funcs, monitor = tb.build_monitoring(cfg, run_dir, reward_funcs)
    grpo_config = to_grpo_config(cfg, run_dir)
    tokenizer = models.load_tokenizer(cfg.model)
    dataset = data.load_problems(cfg.dataset)
    dataset = data.drop_long_prompts(dataset, tokenizer, cfg.dataset.max_prompt_length)
    model = models.load_model(cfg.model)

    if grpo_config.process_index == 0:
        tracking.write_provenance(
            run_dir, cfg.hardware, extra={"experiment": cfg.experiment, "train_rows": len(dataset)}
        )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=grpo_config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=to_peft_config(cfg),
        callbacks=[
            tracking.MetricsFileCallback(run_dir / "metrics.jsonl"),
            tracking.ProgressLogCallback(),
            checkpoints.CompleteMarkerCallback(),
            *([monitor] if monitor else []),
        ],
    )
    if monitor:
        monitor.bind(trainer)
    trainer.remove_callback(PrinterCallback)  # one compact line per log step instead of the full dict
    return trainer


def run_training(cfg: RunConfig, run_dir: Path, trainer: GRPOTrainer | None = None) -> dict[str, Any]:
    """Train (resuming from the newest complete checkpoint in the run dir), save the final model, summarize.

    Every start resumes, whatever ended the previous one (kill, requeue, time limit). On submitit's
    preemption signal the run saves a checkpoint at the end of the step and hands over to submitit.
    """
    from openrs import checkpoints, resume, tracking
    from openrs.preemption import STOP_FILE_ENV, PreemptionCallback

    run_dir = Path(run_dir)
    trainer = trainer or build_trainer(cfg, run_dir)
    resume_from = resume.prepare_resume(run_dir, trainer.is_world_process_zero())
    if resume_from is not None:
        log.info("resuming from %s", resume_from)
    if trainer.is_world_process_zero():
        resume.record_start(run_dir, resume_from)
    resume_step = checkpoints.checkpoint_step(resume_from) if resume_from else 0
    resume.continue_tensorboard(trainer, run_dir / "tb", resume_step or 0)
    stop_file = os.environ.get(STOP_FILE_ENV)
    preempt = PreemptionCallback(stop_file=Path(stop_file) if stop_file else None)
    if stop_file is None:  # a rank started by openrs.launch hears of preemption through the stop file
        preempt.install()
    trainer.add_callback(preempt)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if preempt.stopped:
        log.warning("preempted: checkpoint saved at step %d; the next start resumes there", trainer.state.global_step)
        if stop_file is None:
            preempt.hand_over()  # submitit requeues the job and this process exits
        return {"preempted": True, "global_step": trainer.state.global_step, "run_dir": str(run_dir)}

    summary = tracking.summarize(trainer.state.log_history)
    summary.update(
        {"experiment": cfg.experiment, "global_step": trainer.state.global_step, "run_dir": str(run_dir)}
    )
    if resume_from is not None:
        summary["resumed_from"] = str(resume_from)
    trainer.save_model(str(run_dir / "final"))
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(run_dir / "final"))
        tracking.write_json_atomic(run_dir / "summary.json", summary)
    log.info("done: %d steps, run dir %s", trainer.state.global_step, run_dir)
    return summary


register_configs()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the final mean reward (for sweepers)."""
    from hydra.core.hydra_config import HydraConfig

    from openrs.launch import launch, validate_hardware

    run_cfg = to_run_config(cfg)
    validate_hardware(run_cfg.hardware)
    hydra_dir = Path(HydraConfig.get().runtime.output_dir)
    log.info("config:\n%s", OmegaConf.to_yaml(cfg))
    summary = launch(run_cfg, resolve_run_dir(run_cfg, hydra_dir))
    return summary.get("final", {}).get("reward")


if __name__ == "__main__":
    main()
