"""Score many completions in worker processes with a per-answer time limit.

math-verify runs here without its signal-based timeouts (they only work on the main thread), and sympy can
spin for ever on answers such as ``9^{9^{9^9}}``. The workers are openrs.procpool's killable pool: a worker
that overruns is killed and replaced, and its answer scores as incorrect, as lighteval does when its own
timeout fires.
"""

from __future__ import annotations

from collections.abc import Sequence

from openrs.evaluate.scoring import GoldKind, Verdict, judge
from openrs.procpool import KillablePool

Job = tuple[str, str, GoldKind]  # (prediction, gold, gold kind)


def judge_job(job: Job) -> Verdict:
    """Worker-side handler: one verdict."""
    prediction, gold, kind = job
    return judge(prediction, gold, kind)


class ScoringPool:
    """Scoring processes (started on first use); use as a context manager or call :meth:`close`.

    ``timeout_s`` bounds each answer; ``workers`` is the number of processes (the work is CPU-bound).
    """

    def __init__(self, workers: int = 1, timeout_s: float = 10.0) -> None:
        self._pool = KillablePool(f"{__name__}:judge_job", workers=workers, timeout_s=timeout_s)

    def judge_many(self, jobs: Sequence[Job]) -> list[Verdict]:
        """Verdicts in order; an answer that overruns or crashes its worker scores as incorrect."""
        verdicts = []
        for outcome in self._pool.map(list(jobs)):
            if isinstance(outcome.value, Verdict):
                verdicts.append(outcome.value)
            else:
                verdicts.append(Verdict(False, None, None, timed_out=outcome.timed_out))
        return verdicts

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> ScoringPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
