"""A process pool with a hard wall-clock limit per task (hand-written: nothing in the stack offers this).

`concurrent.futures` and `multiprocessing.Pool` cannot stop a task stuck inside a C call (a sympy power tower
holds the GIL, so no signal handler or thread ever runs). Here each worker is a fresh interpreter
(`python -m openrs.procpool.child`) on its own socket, running one task at a time (the next one already queued);
a worker whose running task passes its deadline is killed (SIGKILL) and replaced, that task reported as timed
out and the queued one sent elsewhere. Fresh interpreters (not fork/forkserver) mean no CUDA state or trainer
threads are copied and the trainer's `__main__` is never re-imported.

The parent never blocks on a worker, whatever the size of a payload or reply (framing: `openrs.procpool.wire`).
Its socket ends are non-blocking; each worker has an outbox of task frames (written as far as the socket takes
them, the rest once it is writable) and a decoder of replies (a message is taken out once all its bytes are in),
and one `poll` waits on reads, writes and the nearest deadline together. So a worker that stops reading its next
task, stops answering, or stalls half-way through a reply is killed at the same deadline. Chosen over a sender
thread per worker (threads in the trainer's process, and one more thing to stop per killed worker) and over
passing large payloads through files or shared memory (clean-up after kills); a small task still costs one write
and one read. A task's clock starts when its frame is queued to an idle worker or when the task before it is
answered, so it covers the transfer of its payload. The caller only waits in `poll` (Linux, macOS), so this
works from any thread and under any launcher.

Workers die with their parent: an idle one sees its socket close; on Linux a busy one started from the main
thread also gets PR_SET_PDEATHSIG. Live pools are closed at interpreter exit.
"""

from __future__ import annotations

import atexit
import math
import os
import select
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from openrs.procpool.wire import READY
from openrs.procpool.workers import Outcome, PendingTasks, WorkerProcess

PIPELINE = 2  # tasks queued per worker, so the next one is already there when one finishes


_LIVE_POOLS: weakref.WeakSet[KillablePool] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for pool in list(_LIVE_POOLS):
        pool.close()


class KillablePool:
    """Run `handler(payload)` over payloads in `workers` processes, each task limited to `timeout_s` seconds.

    `handler` and `init` are "module:function" paths importable in a fresh interpreter. Processes start on the
    first `map` (a worker gets tasks only once it reports ready, so its start-up never counts against a task)
    and stop at interpreter exit or on `close()`.
    """

    def __init__(
        self,
        handler: str,
        workers: int,
        timeout_s: float,
        init: str | None = None,
        start_timeout_s: float = 300.0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.handler, self.init = handler, init
        self.n_workers, self.timeout_s, self.start_timeout_s = workers, timeout_s, start_timeout_s
        self._workers: list[WorkerProcess] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.replaced = 0  # workers killed or lost and replaced since creation
        self._start_failures = 0  # workers in a row that died before reporting ready
        self._results: list[Outcome | None] = []

    def _ensure_started(self) -> None:
        if self._pid != os.getpid():  # a forked copy must not touch its parent's workers
            self._workers, self._pid = [], os.getpid()
        while len(self._workers) < self.n_workers:
            self._workers.append(WorkerProcess(self.handler, self.init))
        _LIVE_POOLS.add(self)

    def _replace(self, worker: WorkerProcess) -> None:
        worker.kill()
        self._workers[self._workers.index(worker)] = WorkerProcess(self.handler, self.init)
        self.replaced += 1

    def map(self, payloads: Sequence[Any], keys: Sequence[Any] | None = None) -> list[Outcome]:
        """Run every payload; returns one `Outcome` per payload, in order.

        `keys` (optional, hashable, one per payload): a free worker prefers a pending task with the key of its
        previous task, so tasks sharing a key (a GRPO group sharing a gold) meet the same worker's caches.
        """
        if keys is not None and len(keys) != len(payloads):
            raise ValueError("keys must have one entry per payload")
        with self._lock:
            self._ensure_started()
            return self._run(payloads, list(keys) if keys is not None else [None] * len(payloads))

    def _dispatch(self, pending: PendingTasks, payloads: Sequence[Any]) -> None:
        """Keep every ready worker's queue `PIPELINE` deep, so it never waits for the parent between tasks."""
        for w in list(self._workers):
            if not (w.ready and w.writable and len(w.inflight) < PIPELINE and pending):
                continue
            if not w.inflight and w.proc.poll() is not None:  # died while idle (e.g. OOM killer)
                self._replace(w)
                continue
            while len(w.inflight) < PIPELINE and pending:
                i = pending.pop(w.last_key)
                w.outbox.put((i, payloads[i]))
                if not w.inflight:
                    self._start_clock(w, time.monotonic())
                w.inflight.append(i)
                w.last_key = pending.keys[i]
            w.flush()

    def _start_clock(self, w: WorkerProcess, now: float) -> None:
        w.started, w.deadline = now, now + self.timeout_s

    def _lose(self, w: WorkerProcess, pending: PendingTasks, head: Outcome, now: float) -> None:
        """Replace `w`; its running task gets `head`, the tasks queued behind it are re-queued."""
        queued = list(w.inflight)
        if queued:
            head.seconds = now - w.started
            self._results[queued.pop(0)] = head
        for i in reversed(queued):
            pending.push_back(i)
        self._replace(w)

    def _run(self, payloads: Sequence[Any], keys: list[Any]) -> list[Outcome]:
        self._results: list[Outcome | None] = [None] * len(payloads)
        pending = PendingTasks(keys)
        last_progress = time.monotonic()
        while pending or any(w.inflight for w in self._workers):
            self._dispatch(pending, payloads)
            busy = [w for w in self._workers if w.inflight]
            if not busy and time.monotonic() - last_progress > self.start_timeout_s:
                raise RuntimeError(f"verifier workers did not start within {self.start_timeout_s:.0f} s")
            next_deadline = min((w.deadline for w in busy), default=time.monotonic() + 1.0)
            events = self._poll(next_deadline)
            now = time.monotonic()
            for w in list(self._workers):
                event = events.get(w.sock.fileno(), 0)
                if event & ~select.POLLOUT and self._receive(w, pending, now):  # readable, or closed
                    last_progress = now
                if w.alive and event & select.POLLOUT:
                    w.flush()
                if w.alive and w.inflight and now >= w.deadline:
                    self._lose(w, pending, Outcome(timed_out=True), now)
        results, self._results = self._results, []
        return [r if r is not None else Outcome(failed=True) for r in results]

    def _poll(self, until: float) -> dict[int, int]:
        """Wait until a worker can be read from or written to, or `until` (monotonic time); fd -> events."""
        poller = select.poll()
        for w in self._workers:
            mask = (select.POLLIN if w.inflight or not w.ready else 0) | (select.POLLOUT if w.outbox else 0)
            if mask:
                poller.register(w.sock, mask)
        return dict(poller.poll(max(0, math.ceil((until - time.monotonic()) * 1000))))

    def _receive(self, w: WorkerProcess, pending: PendingTasks, now: float) -> bool:
        """Take the messages `w` has sent; True when there was one, False on none or a dead worker (replaced)."""
        try:
            messages = w.decoder.read(w.sock)
        except (EOFError, OSError):  # the worker died (out of memory, killed, failed to start)
            if not w.ready:
                self._start_failures += 1
                if self._start_failures >= 3:
                    self.close()
                    raise RuntimeError(
                        "verifier workers failed to start 3 times in a row; see their stderr above"
                    ) from None
            self._lose(w, pending, Outcome(failed=True), now)
            return False
        for msg in messages:
            if msg == READY:
                w.ready = True
                self._start_failures = 0
                continue
            task_id, ok, value = msg
            head = w.inflight.popleft()
            assert head == task_id, (head, task_id)
            self._results[task_id] = Outcome(value=value if ok else None, failed=not ok, seconds=now - w.started)
            if w.inflight:  # the worker has started on the next queued task
                self._start_clock(w, now)
        return bool(messages)

    def close(self) -> None:
        """Stop every worker (idempotent); the next `map` starts fresh ones."""
        if self._pid != os.getpid():
            return
        workers, self._workers = self._workers, []
        for w in workers:
            w.kill()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_workers=[], _lock=None, _results=[])
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._pid = os.getpid()
