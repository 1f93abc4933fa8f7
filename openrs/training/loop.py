"""One training rank's run, top to bottom: this process set up, the trainer assembled and recorded, resumed,
trained to the end, the final model and the summary written.

:func:`build_trainer` prepares the process (threads, seed, TensorBoard dir, DeepSpeed's ninja), assembles the
trainer (openrs.training.trainer) and records in ``provenance.json`` what it was built with; :func:`run_training`
resumes from the newest complete checkpoint, trains, saves the final model and the summary. The launcher
(openrs.runtime.launch) calls these in process or in each spawned rank (openrs.runtime.worker).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openrs import models
from openrs.config import RunConfig, value_of
from openrs.procpool.procs import cpu_share
from openrs.records import provenance, run_summary
from openrs.records.atomic import publish_dir, write_json_atomic
from openrs.records.run_dir import RunDir
from openrs.training import checkpoints, disk, resume
from openrs.training.grpo_config import SEED_GAPS, run_precision, vllm_dtype
from openrs.training.preemption import STOP_FILE_ENV, PreemptionCallback
from openrs.training.trainer import build_grpo_trainer

if TYPE_CHECKING:
    from trl import GRPOTrainer

log = logging.getLogger("openrs.train")


def prepare_process(cfg: RunConfig, run_dir: Path) -> None:
    """This process's settings for the run: torch threads, seeds, the TensorBoard dir, DeepSpeed's JIT ops.

    Threads: hardware.cpu_threads, else $OMP_NUM_THREADS (the launcher sets it per rank), else this job's share of
    the cores, so concurrent local sweep jobs do not spin against each other.
    """
    import torch
    from transformers import set_seed

    run_dir.mkdir(parents=True, exist_ok=True)
    env = os.environ.get("OMP_NUM_THREADS")
    threads = cfg.hardware.cpu_threads or (int(env) if env and env.isdigit() else cpu_share())
    torch.set_num_threads(max(1, threads))
    # transformers' TensorBoardCallback reads this; all events of a run go to <run dir>/tb.
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(RunDir(run_dir).tb)
    if cfg.hardware.deepspeed:
        from openrs.training.ds_ops import prepare_jit_ops

        prepare_jit_ops()
    set_seed(cfg.seed)


def generation_record(cfg: RunConfig) -> dict[str, Any]:
    """Which engine generated the rollouts, its version and dtype (and, for vLLM, its mode and weight transfer)."""
    from importlib import metadata

    hw = cfg.hardware
    if not hw.use_vllm:
        return {
            "engine": "transformers",
            "version": metadata.version("transformers"),
            "dtype": run_precision(cfg).weights_dtype,
        }
    mode = str(value_of(hw.vllm_mode))
    # TRL builds the colocated engine without a dtype (vLLM's "auto": the checkpoint's); the CPU stand-in passes it.
    dtype = "auto" if mode == "colocate" and not hw.use_cpu else vllm_dtype(cfg)
    transfer = "file + reload_weights (openrs.training.vllm_cpu)" if hw.use_cpu else "TRL's own (NCCL, load_weights)"
    return {
        "engine": "vllm",
        "version": metadata.version("vllm"),
        "mode": mode,
        "dtype": dtype,
        "weight_transfer": transfer,
    }


def record_provenance(cfg: RunConfig, run_dir: Path, trainer: GRPOTrainer) -> None:
    """``provenance.json``: versions, commit, host, and what this trainer was really built with."""
    precision = run_precision(cfg)
    init_kwargs = models.model_init_kwargs(cfg.model, precision.weights_dtype, cfg.hardware.use_cpu)
    ds = getattr(trainer.args, "hf_deepspeed_config", None)  # set by TrainingArguments when deepspeed is on
    provenance.write_provenance(
        run_dir,
        cfg.hardware,
        extra={
            "experiment": cfg.experiment,
            "train_rows": len(trainer.train_dataset),
            # Configured hub revisions (null = the branch head at download time; pin a sha to rerun exactly).
            "revisions": {"model": cfg.model.revision, "dataset": cfg.dataset.revision},
            # This start's ports (picked free per job by the launcher unless fixed in hardware.*).
            "ports": {
                "master": int(os.environ["MASTER_PORT"]) if "MASTER_PORT" in os.environ else None,
                "vllm_server": cfg.hardware.vllm_server_port or None,
                "vllm_group": cfg.hardware.vllm_group_port or None,
            },
            "generation": generation_record(cfg),  # the engine that generated the rollouts
            "attn_implementation": init_kwargs.get("attn_implementation"),
            "precision": precision.to_dict(),
            "deepspeed_config": ds.config if ds is not None else None,
            "grpo_config": trainer.args.to_dict(),  # every argument TRL trained with
            "trl_cannot_reproduce_seed": list(SEED_GAPS),
        },
    )


def build_trainer(cfg: RunConfig, run_dir: Path) -> GRPOTrainer:
    """This process prepared for the run, the trainer assembled, and (main process) what it was built with recorded."""
    prepare_process(cfg, run_dir)
    trainer = build_grpo_trainer(cfg, run_dir)
    if trainer.is_world_process_zero():
        record_provenance(cfg, run_dir, trainer)
    return trainer


def run_training(cfg: RunConfig, run_dir: Path, trainer: GRPOTrainer | None = None) -> dict[str, Any]:
    """Train (resuming from the newest complete checkpoint in the run dir), save the final model, summarize.

    Every start resumes, whatever ended the previous one (kill, requeue, time limit). On submitit's
    preemption signal the run saves a checkpoint at the end of the step and hands over to submitit.
    """
    run_dir = Path(run_dir)
    trainer = trainer or build_trainer(cfg, run_dir)
    resume_from = resume.prepare_resume(run_dir, trainer.is_world_process_zero())
    if resume_from is not None:
        log.info("resuming from %s", resume_from)
    if trainer.is_world_process_zero():
        resume.record_start(run_dir, resume_from)
    resume_step = checkpoints.checkpoint_step(resume_from) if resume_from else 0
    resume.continue_tensorboard(trainer, RunDir(run_dir).tb, resume_step or 0)
    stop_file = os.environ.get(STOP_FILE_ENV)
    preempt = PreemptionCallback(stop_file=Path(stop_file) if stop_file else None)
    if stop_file is None:  # a rank started by openrs.runtime.launch hears of preemption through the stop file
        preempt.install()
    trainer.add_callback(preempt)
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except disk.DiskFullError:
        raise  # refused before writing: already says what to do
    except Exception as exc:
        if trainer.is_world_process_zero() and disk.ran_out_of_space(
            exc, run_dir, trainer.model, bool(cfg.hardware.deepspeed)
        ):
            raise disk.disk_full_during_run(run_dir, trainer.state.global_step) from exc
        raise
    if preempt.stopped:
        log.warning("preempted: checkpoint saved at step %d; the next start resumes there", trainer.state.global_step)
        if stop_file is None:
            preempt.hand_over()  # submitit requeues the job and this process exits
        return {"preempted": True, "global_step": trainer.state.global_step, "run_dir": str(run_dir)}

    summary = run_summary.summarize(trainer.state.log_history)
    summary.update(
        {
            "experiment": cfg.experiment,
            "global_step": trainer.state.global_step,
            "max_steps": trainer.state.max_steps,  # a start that asks for no more steps finds the run complete
            "run_dir": str(run_dir),
        }
    )
    if resume_from is not None:
        summary["resumed_from"] = str(resume_from)
    save_final(trainer, RunDir(run_dir).final)
    if trainer.is_world_process_zero():
        write_json_atomic(RunDir(run_dir).summary, summary)
    log.info("done: %d steps, run dir %s", trainer.state.global_step, run_dir)
    return summary


def save_final(trainer: GRPOTrainer, final_dir: Path) -> None:
    """The final model and tokenizer, written beside ``final_dir`` and renamed into place: whole or absent."""
    import shutil

    staging = final_dir.with_name(final_dir.name + ".partial")
    try:
        trainer.save_model(str(staging))
        if trainer.is_world_process_zero():
            trainer.processing_class.save_pretrained(str(staging))
    except Exception as exc:
        if trainer.is_world_process_zero():
            shutil.rmtree(staging, ignore_errors=True)
            if disk.is_disk_full(exc):
                raise disk.DiskFullError(
                    f"no space left while writing {final_dir}; the checkpoints are intact: "
                    f"{disk.resume_hint(RunDir(final_dir.parent).checkpoints)}"
                ) from exc
        raise
    if trainer.is_world_process_zero():
        publish_dir(staging, final_dir)
