"""The killable worker pool on its own, with stdlib handlers (no sympy): deadlines, failures, replacement."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from openrs.rewards.pool import KillablePool, _Pending


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
    pending = _Pending(["a", "a", "b", "a", None])
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
        "from openrs.rewards._wire import encode\n"
        "from openrs.rewards.pool import KillablePool\n"
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
