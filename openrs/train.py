"""``python -m openrs.train``: compose the config, then launch the run's processes.

python -m openrs.train                                   # the CPU smoke experiment
python -m openrs.train experiment=rs2 reward=cosine      # the paper's run 2 with the cosine reward
python -m openrs.train experiment=rs3 lr=5e-6 max_len=4096
python -m openrs.train --cfg job experiment=rs1          # print the composed config
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from openrs.cli import quote_path_overrides, report_user_errors
from openrs.config import CONF_DIR, RunConfig, register_configs, to_run_config
from openrs.errors import UsageError
from openrs.records.run_dir import RunDir

log = logging.getLogger("openrs.train")


def resolve_run_dir(cfg: RunConfig, hydra_run_dir: Path) -> Path:
    """``resume=<dir>`` continues that run; otherwise the run writes to Hydra's directory."""
    if cfg.resume:
        run_dir = Path(cfg.resume).expanduser()
        if not RunDir(run_dir).is_run():
            raise UsageError(f"resume={cfg.resume}: not a run directory (no checkpoints/ or .hydra/ in it)")
        return run_dir
    return hydra_run_dir


def evaluate_after_training(cfg: RunConfig, run_dir: Path) -> str:
    """``eval_after``: the starting and the final model on its benchmark, paired; the sentence to print last.

    A finished run started again prints the sentence it recorded instead of evaluating again.
    """
    import json

    from openrs import models
    from openrs.evaluate.heldout import start_vs_final

    done = RunDir(run_dir).after_training
    if done.is_file():
        return json.loads(done.read_text())["sentence"]
    e = cfg.eval_after
    record = start_vs_final(
        models.resolve_model_path(cfg.model),
        RunDir(run_dir).final,
        run_dir,
        e.benchmark,
        e.limit,
        e.max_new_tokens,
    )
    return record["sentence"]


register_configs()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the final mean reward (for sweepers)."""
    from hydra.core.hydra_config import HydraConfig

    from openrs.records import console
    from openrs.runtime.launch import launch
    from openrs.runtime.memory_check import require_memory_fits
    from openrs.runtime.placement import node_plan

    hydra_dir = Path(HydraConfig.get().runtime.output_dir)
    with report_user_errors("openrs.train", hydra_dir):
        run_cfg = to_run_config(cfg)  # typed, and checked across groups (openrs.config.validate_run)
        run_dir = resolve_run_dir(run_cfg, hydra_dir)
        plan = node_plan(run_cfg.hardware)  # a preset this machine cannot run is said before anything else
        require_memory_fits(run_cfg, plan)  # as is a layout its GPUs cannot hold
        console.quiet_libraries()
        print(console.header(run_cfg, run_dir), flush=True)  # the full config is in <hydra dir>/.hydra/
        summary = launch(run_cfg, run_dir)
        if not plan.node.first:  # a run across nodes reports from node 0
            return None
        print(console.result(summary), flush=True)
        if run_cfg.eval_after is not None and not summary.get("preempted"):
            print(evaluate_after_training(run_cfg, run_dir), flush=True)
    return summary.get("final", {}).get("reward")


if __name__ == "__main__":
    sys.argv = quote_path_overrides(sys.argv)  # sweep-point dirs (lr=5e-06,reward=cosine) paste back as printed
    main()
