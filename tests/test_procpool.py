"""The killable worker pool on its own, with stdlib handlers (no sympy): deadlines, failures, replacement."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openrs.procpool import KillablePool
from openrs.procpool.workers import PendingTasks

HELPERS = Path(__file__).resolve().parent  # holds pool_handlers.py, imported by the workers
MB = 1 << 20


def test_stuck_task_is_killed_others_complete():
    pool = KillablePool("time:sleep", workers=2, timeout_s=0.5)
    try:
        pool.map([0.0, 0.0])  # start the workers outside the timed part
        start = time.monotonic()
        out = pool.map([0.01, 30.0, 0.01, 0.01])
        elapsed = time.monotonic() - start
        assert [o.timed_out for o in out] == [False, True, False, False]
        assert not any(o.failed for o in out)
        assert 0.5 <= out[1].seconds < 1.5 and elapsed < 2.0
        assert pool.replaced == 1
        assert [o.timed_out for o in pool.map([0.01] * 3)] == [False] * 3  # the replacement serves
    finally:
        pool.close()


def test_handler_error_is_a_failed_task_not_a_crash():
    pool = KillablePool("math:sqrt", workers=1, timeout_s=5.0)
    try:
        out = pool.map([-1.0, 4.0])
        assert out[0].failed and out[0].value is None
        assert out[1].value == 2.0 and not out[1].failed
        assert pool.replaced == 0
    finally:
        pool.close()


def test_worker_killed_while_idle_is_replaced_and_task_still_runs():
    pool = KillablePool("math:sqrt", workers=1, timeout_s=5.0)
    try:
        pool.map([1.0])
        pool._workers[0].proc.kill()
        pool._workers[0].proc.wait()
        assert pool.map([9.0])[0].value == 3.0
        assert pool.replaced == 1
    finally:
        pool.close()


def test_worker_that_cannot_start_raises_after_three_tries():
    pool = KillablePool("no_such_module_for_openrs_tests:f", workers=1, timeout_s=5.0)
    with pytest.raises(RuntimeError, match="failed to start 3 times"):
        pool.map([1])
    assert pool._workers == []


def test_close_stops_processes_and_map_restarts():
    pool = KillablePool("math:sqrt", workers=2, timeout_s=5.0)
    pool.map([1.0])
    procs = [w.proc for w in pool._workers]
    pool.close()
    assert all(p.poll() is not None for p in procs)
    try:
        assert pool.map([16.0])[0].value == 4.0
    finally:
        pool.close()


def test_pending_prefers_the_workers_last_key():
    pending = PendingTasks(["a", "a", "b", "a", None])
    assert pending.pop() == 0
    assert pending.pop("b") == 2
    assert pending.pop("a") == 1
    assert pending.pop("a") == 3
    assert pending.pop("a") == 4  # no "a" left: oldest remaining
    assert not pending
    pending.push_back(4)
    assert pending and pending.pop() == 4


@pytest.mark.parametrize(("workers", "timeout_s"), [(0, 1.0), (1, 0.0)])
def test_pool_arguments_validated(workers, timeout_s):
    with pytest.raises(ValueError):
        KillablePool("math:sqrt", workers=workers, timeout_s=timeout_s)


def test_tasks_queued_behind_a_stuck_one_are_rerun_elsewhere():
    pool = KillablePool("time:sleep", workers=1, timeout_s=0.5)
    try:
        pool.map([0.0])
        out = pool.map([30.0, 0.01, 0.02])  # the last two sit in the stuck worker's queue
        assert [o.timed_out for o in out] == [True, False, False]
        assert not any(o.failed for o in out)
    finally:
        pool.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux-only")
@pytest.mark.parametrize("exit_call", ["sys.exit(0)", "os._exit(0)"])
def test_workers_die_with_their_parent(exit_call, tmp_path):
    """Normal exit (atexit closes the pool) and hard exit (idle worker: socket EOF; busy one: PR_SET_PDEATHSIG)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        "from openrs.procpool.wire import encode\n"
        "from openrs.procpool import KillablePool\n"
        "pool = KillablePool('time:sleep', workers=2, timeout_s=120)\n"
        "pool.map([0.0, 0.0])\n"
        "pool._workers[0].sock.send(encode((0, 60.0)))  # one worker busy for a minute, the other idle\n"
        "print(' '.join(str(w.proc.pid) for w in pool._workers), flush=True)\n"
        f"{exit_call}\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for its reaper counts as gone
            return f.read().split(")")[-1].split()[0] != "Z"

    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


# --- payloads and replies larger than the socket buffer --------------------------------------------------------


@pytest.fixture
def helpers_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let fresh worker interpreters import `pool_handlers` (they inherit PYTHONPATH)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HELPERS), os.environ.get("PYTHONPATH")) if p))


class Hung(Exception):
    """Raised by `watchdog`; not an OSError, so the pool cannot mistake it for a dead worker."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Fail (raise in the main thread, interrupting a blocked system call) instead of hanging the suite."""

    def fire(signum: int, frame: object) -> None:
        raise Hung(f"pool call still running after {seconds:.0f} s: the hard limit did not hold")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def children() -> set[int]:
    """Pids whose parent is this process, zombies included (so an unreaped worker shows)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                pids.add(int(entry))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; SIGALRM watchdog")
@pytest.mark.parametrize("workers", [1, 2])
def test_big_payloads_queued_behind_a_stuck_task_do_not_defeat_the_limit(workers, helpers_importable):
    """A worker that stops reading must not block the parent in a send: the limit holds for any payload."""
    from pool_handlers import STALL

    limit = 1.0
    before = children()
    pool = KillablePool("pool_handlers:stall_or_len", workers=workers, timeout_s=limit)
    try:
        with watchdog(30):
            pool.map(["x"] * workers)  # start the workers outside the timed part
            first = [w.proc for w in pool._workers]
            big = [c * (n * MB) for c, n in zip("abcdef", (8, 4, 2, 8, 3, 6), strict=True)]
            # every worker gets a stall first, then multi-megabyte payloads queue behind it; one more stall later
            payloads = [STALL] * workers + big[:3] + [STALL] + big[3:]
            start = time.monotonic()
            out = pool.map(payloads)
            elapsed = time.monotonic() - start
        stalls = [i for i, p in enumerate(payloads) if p == STALL]
        assert [i for i, o in enumerate(out) if o.timed_out] == stalls
        assert all(limit * 0.9 <= out[i].seconds < limit + 1.0 for i in stalls), [out[i].seconds for i in stalls]
        assert [o.value for i, o in enumerate(out) if i not in stalls] == [len(p) for p in big]
        assert not any(o.failed for o in out)
        # at most two stalls run one after the other on one worker; slack covers the replacements' start-up
        assert elapsed < 2 * limit + 6.0, elapsed
        assert pool.replaced == len(stalls)
        assert all(p.poll() is not None for p in first)  # the stuck first workers are dead and reaped
        assert children() - before == {w.proc.pid for w in pool._workers}
    finally:
        pool.close()
    assert children() - before == set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGALRM watchdog; SIGSTOP")
def test_deadline_holds_while_a_payload_is_still_being_written(helpers_importable):
    """A worker that stops reading its own task's payload half-way is as stuck as one that never answers."""
    pool = KillablePool("pool_handlers:stall_or_len", workers=1, timeout_s=1.0)
    try:
        with watchdog(30):
            pool.map(["x"])
            stopped = pool._workers[0].proc
            os.kill(stopped.pid, signal.SIGSTOP)  # alive, but reads nothing more
            start = time.monotonic()
            out = pool.map(["a" * (8 * MB), "b" * MB])
            elapsed = time.monotonic() - start
        assert out[0].timed_out and 1.0 <= out[0].seconds < 2.0
        assert out[1].value == MB and not out[1].failed  # re-queued to the replacement
        assert elapsed < 6.0 and pool.replaced == 1 and stopped.poll() is not None
    finally:
        pool.close()


def test_big_replies_come_back_intact(helpers_importable):
    pool = KillablePool("pool_handlers:pattern", workers=2, timeout_s=10.0)
    try:
        sizes = [8 * MB, 1, 3 * MB, 12 * MB, 5 * MB]
        with watchdog(60):
            out = pool.map(sizes)
        from pool_handlers import pattern

        assert [o.value == pattern(n) for o, n in zip(out, sizes, strict=True)] == [True] * len(sizes)
        assert pool.replaced == 0
    finally:
        pool.close()


def test_reply_stalled_mid_message_still_times_out(helpers_importable):
    """A worker that stops half-way through writing its reply is as stuck as one that never answers."""
    pool = KillablePool("pool_handlers:half_reply", workers=1, timeout_s=1.0)
    try:
        with watchdog(30):
            start = time.monotonic()
            out = pool.map([None])  # includes the worker's start-up
            elapsed = time.monotonic() - start
        assert out[0].timed_out and 1.0 <= out[0].seconds < 2.0 and elapsed < 10.0
        assert pool.replaced == 1
    finally:
        pool.close()
