"""The shared, time-bounded math verifier: one correctness pass per batch for every term that needs it.

Terms register the `boxed` normalization they use; the first term of a step that asks about a batch gets every
(completion, gold) pair judged once under all registered settings, in the worker pool, and the verdicts are
cached by (completion text, gold, setting). The other terms of the step then read the cache. Hand-written: TRL's
reward functions each parse and verify on their own, in the calling process, with signal-based timeouts.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openrs.procpool import KillablePool
from openrs.rewards.extraction import BOXED_MODES, is_boxed_mode

_HANDLER = "openrs.rewards.mathcheck:check"
_INIT = "openrs.rewards.mathcheck:init_worker"

LogMetric = Callable[[str, float], None]


@dataclass(frozen=True)
class Verdict:
    """One completion judged against its gold under one normalization setting."""

    correct: bool
    gold_parsed: bool = True  # False: the gold has no LaTeX answer math-verify can parse
    timed_out: bool = False  # the pool killed the worker; scored as wrong


def default_workers() -> int:
    """CPU cores available to this rank: its share of the job's cores (openrs.procpool.procs.cpu_share)."""
    from openrs.procpool.procs import cpu_share

    return cpu_share(int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))


def check_settings(workers: Any, timeout_s: Any, cache_size: Any) -> None:
    """ValueError naming the setting unless workers is a positive int or None, timeout_s > 0, cache_size >= 1."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"verifier.workers must be a positive integer or null, got {workers!r}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"verifier.timeout_s must be a positive number, got {timeout_s!r}")
    if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
        raise ValueError(f"verifier.cache_size must be a positive integer, got {cache_size!r}")


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class SharedVerifier:
    """Judges completions against golds in a lazily started pool with a hard per-completion time limit.

    Args:
        workers: worker processes; None = `default_workers()`.
        timeout_s: wall-clock limit per completion (all settings of one completion are judged in one task).
        cache_size: verdicts kept (per completion, gold and setting); a step needs batch size x settings.
    """

    def __init__(self, workers: int | None = None, timeout_s: float = 5.0, cache_size: int = 65536) -> None:
        check_settings(workers, timeout_s, cache_size)
        self.workers, self.timeout_s, self.cache_size = workers, float(timeout_s), cache_size
        self.settings: list[Any] = []
        self._pool: KillablePool | None = None
        self._cache: OrderedDict[tuple, Verdict] = OrderedDict()
        self._lock = threading.Lock()
        self.totals = {"judged": 0, "timeouts": 0, "failures": 0, "unparseable_gold_rows": 0, "seconds": 0.0}

    def register(self, boxed: Any) -> None:
        """Declare a normalization setting some term will ask for, so the shared pass covers it."""
        if not is_boxed_mode(boxed):
            raise ValueError(f"boxed must be one of {list(BOXED_MODES)}, got {boxed!r}")
        if boxed not in self.settings:
            self.settings.append(boxed)

    @property
    def pool(self) -> KillablePool:
        if self._pool is None:
            n = self.workers if self.workers is not None else default_workers()
            self._pool = KillablePool(_HANDLER, workers=n, timeout_s=self.timeout_s, init=_INIT)
        return self._pool

    def check(
        self, texts: Sequence[str], golds: Sequence[str], boxed: Any, log_metric: LogMetric | None = None
    ) -> list[Verdict]:
        """Verdicts for `texts[i]` against `golds[i]` under `boxed`; judges what the cache lacks, in one pass."""
        if len(texts) != len(golds):
            raise ValueError(f"got {len(texts)} completions but {len(golds)} solutions")
        with self._lock:
            self.register(boxed)
            settings = tuple(self.settings)
            keys = [(_digest(t), g) for t, g in zip(texts, golds, strict=True)]
            found: dict[tuple, Verdict] = {}
            todo: dict[tuple, int] = {}
            for i, k in enumerate(keys):
                hit = self._cache.get((*k, boxed))
                if hit is not None:
                    found[k] = hit
                elif k not in todo:
                    todo[k] = i
            if todo:
                judged = self._judge(
                    [texts[i] for i in todo.values()],
                    [golds[i] for i in todo.values()],
                    list(todo),
                    settings,
                    keys,
                    log_metric,
                )
                found.update((k, v[settings.index(boxed)]) for k, v in judged.items())
            return [found[k] for k in keys]

    def _judge(
        self,
        texts: list[str],
        golds: list[str],
        keys: list[tuple],
        settings: tuple,
        batch_keys: list[tuple],
        log_metric: LogMetric | None,
    ) -> dict[tuple, list[Verdict]]:
        """Judge each (text, gold) once under every setting in the pool; cache and return the verdicts."""
        start = time.perf_counter()
        outcomes = self.pool.map([(t, g, settings) for t, g in zip(texts, golds, strict=True)], keys=golds)
        seconds = time.perf_counter() - start
        judged: dict[tuple, list[Verdict]] = {}
        timeouts = failures = 0
        for key, out in zip(keys, outcomes, strict=True):
            if out.timed_out or out.failed:
                timeouts += out.timed_out
                failures += out.failed
                judged[key] = [Verdict(correct=False, timed_out=out.timed_out)] * len(settings)
            else:
                gold_ok, correct = out.value
                judged[key] = [Verdict(correct=c, gold_parsed=gold_ok) for c in correct]
            for setting, verdict in zip(settings, judged[key], strict=True):
                self._store((*key, setting), verdict)
        bad_rows = sum(k in judged and not judged[k][0].gold_parsed for k in batch_keys)
        for name, value in (
            ("judged", len(keys)),
            ("timeouts", timeouts),
            ("failures", failures),
            ("unparseable_gold_rows", bad_rows),
            ("seconds", seconds),
        ):
            self.totals[name] += value
        if log_metric is not None:
            log_metric("verifier/timeouts", float(timeouts))
            log_metric("verifier/failures", float(failures))
            log_metric("verifier/unparseable_gold_rows", float(bad_rows))
            log_metric("verifier/seconds", float(seconds))
            log_metric("verifier/judged", float(len(keys)))
            log_metric("verifier/batch_rows", float(len(batch_keys)))
        return judged

    def _store(self, key: tuple, verdict: Verdict) -> None:
        self._cache[key] = verdict
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        """Stop the worker processes (also done at interpreter exit); the next check restarts them."""
        if self._pool is not None:
            self._pool.close()

    def __getstate__(self) -> dict:
        # Picklable for TRL's spawned rollout workers: the copy gets its own lazy pool and an empty cache.
        state = self.__dict__.copy()
        state.update(_pool=None, _cache=OrderedDict(), _lock=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
