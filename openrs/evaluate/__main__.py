"""``python -m openrs.evaluate``: the paper's benchmarks on a model, a hub revision, or a run's checkpoints.

python -m openrs.evaluate model=knoveleng/Open-RS3 benchmarks=[aime24,math500,amc23,minerva,olympiadbench]
python -m openrs.evaluate run=outputs/rs3/2026-11-24/10-00-00 checkpoints=all n_samples=8
python -m openrs.evaluate --multirun model=knoveleng/OpenRS-GRPO revision=<sha>,<sha>
python -m openrs.evaluate --cfg job model=x          # print the composed config
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from openrs.evaluate.config import CONFIG_NAME, register_configs, to_eval_config
from openrs.records.run_dir import RunDir


def eval_run_dir(run: str | None, date: str, time: str) -> str:
    """Hydra's own directory for one job: ``outputs/eval/<date>/<time>``, or inside the run being evaluated."""
    if run is None:
        return f"outputs/eval/{date}/{time}"
    return str(RunDir(Path(run)).eval_logs(f"{date}_{time}"))


OmegaConf.register_new_resolver("openrs_eval_dir", eval_run_dir, replace=True)
register_configs()


@hydra.main(version_base="1.3", config_path=None, config_name=CONFIG_NAME)
def main(cfg: DictConfig) -> list[str]:
    """Hydra entry point; returns the ``results.json`` paths (collected by the multirun table)."""
    from hydra.core.hydra_config import HydraConfig

    from openrs.evaluate.pipeline import run_evaluation
    from openrs.records.console import quiet_libraries

    quiet_libraries()

    hydra_dir = Path(HydraConfig.get().runtime.output_dir)
    return [str(p) for p in run_evaluation(to_eval_config(cfg), hydra_dir)]


if __name__ == "__main__":
    import sys

    from openrs.cli import quote_path_overrides

    sys.argv = quote_path_overrides(sys.argv)  # run=<sweep point dir> pastes back as printed
    main()
