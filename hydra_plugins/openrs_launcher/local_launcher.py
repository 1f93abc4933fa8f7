"""Hydra's submitit local launcher, telling each job how many jobs share the machine.

submitit's local executor starts every job of a sweep at once. Each job's torch would otherwise take every core
and the jobs spin against each other (a two-point sweep on two cores ran 6x slower than one run alone); with the
count in ``OPENRS_JOBS_SHARING_NODE`` each job sizes its threads and verifier workers to its share
(openrs.procpool.procs.cpu_share).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher as _PluginLocalLauncher

JOBS_ENV = "OPENRS_JOBS_SHARING_NODE"


class LocalLauncher(_PluginLocalLauncher):
    """``hydra/launcher=submitit_local``: the plugin's local launcher; jobs learn how many run beside them."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        previous = os.environ.get(JOBS_ENV)
        os.environ[JOBS_ENV] = str(max(1, len(job_overrides)))  # the jobs inherit the submitting environment
        try:
            return super().launch(job_overrides, initial_job_idx)
        finally:
            if previous is None:
                os.environ.pop(JOBS_ENV, None)
            else:
                os.environ[JOBS_ENV] = previous
