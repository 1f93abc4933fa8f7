"""Hydra's submitit SLURM launcher, with one SLURM job per sweep point named after its overrides.

hydra-submitit-launcher submits a sweep as one job array, so every job carries the same name. Here
each sweep point is its own job, named ``<prefix>:<override dirname>`` (``openrs-rs3:lr=5e-06,reward=cosine``),
so ``squeue``/``sacct`` read like the ablation table and the multirun subdirs. Running, checkpointing
and requeueing are the plugin's own (``__call__`` and ``checkpoint`` are inherited).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _PluginSlurmLauncher
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

_INIT_KEYS = {"submitit_folder", "max_num_timeout"}
# Slurm >= 22.05 no longer hands sbatch's --cpus-per-task to srun: without this the job's one task (the launcher,
# its ranks, verifier workers and vLLM) can be bound to a single core.
SRUN_CPUS = "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK"
# srun's --kill-on-bad-exit: a node whose launcher fails ends the job's other nodes at once (a run across nodes),
# instead of leaving them in a collective until its timeout.
KILL_ON_BAD_EXIT = "export SLURM_KILL_BAD_EXIT=1"
SETUP = (SRUN_CPUS, KILL_ON_BAD_EXIT)


def job_name(prefix: str, overrides: Sequence[str], exclude_keys: Sequence[str] = ()) -> str:
    """``prefix:key=value,...`` from a sweep point's overrides (sorted, like Hydra's override_dirname)."""
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(filter_overrides(overrides)))
    dirname = get_overrides_dirname(parsed, exclude_keys=list(exclude_keys), item_sep=",", kv_sep="=")
    return f"{prefix}:{dirname}" if dirname else prefix


class SlurmLauncher(_PluginSlurmLauncher):
    """``hydra/launcher=submitit_slurm``: one SLURM job per sweep point, each named after its overrides."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None
        params = dict(self.params)
        executor = submitit.AutoExecutor(
            cluster="slurm",
            folder=params["submitit_folder"],
            slurm_max_num_timeout=params.get("max_num_timeout", 0),
        )
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        prefix = str(params.pop("name"))
        params["setup"] = [*SETUP, *(s for s in (params.get("setup") or []) if s not in SETUP)]
        executor.update_parameters(
            **{k if k in base else f"slurm_{k}": v for k, v in params.items() if k not in _INIT_KEYS}
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        exclude = list(self.config.hydra.job.config.override_dirname.exclude_keys)
        log.info("submitit 'slurm' sweep output dir: %s", sweep_dir)
        jobs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            name = job_name(prefix, overrides, exclude)
            executor.update_parameters(name=name)
            job = executor.submit(
                self, list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()
            )
            log.info(
                "\t#%d : %s -> SLURM job %s (%s)",
                idx,
                " ".join(filter_overrides(overrides)),
                job.job_id,
                name,
            )
            jobs.append(job)
        return [j.results()[0] for j in jobs]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Requeue this sweep point with the same arguments; training resumes from its run dir."""
        return super().checkpoint(*args, **kwargs)
