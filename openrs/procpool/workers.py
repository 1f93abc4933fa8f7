"""The pool's parts: a task's outcome, one worker process with the parent's socket end, the unsent tasks.

A worker is a fresh interpreter (`python -m openrs.procpool.child`) on one end of a socket pair; the parent's
end is non-blocking (framing: `openrs.procpool.wire`). Scheduling and deadlines are `openrs.procpool.pool`'s.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openrs.procpool.wire import Decoder, Outbox

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding the `openrs` package


@dataclass
class Outcome:
    """What became of one task: its value, or why there is none."""

    value: Any = None
    timed_out: bool = False
    failed: bool = False  # the handler raised, or the worker died for another reason
    seconds: float = 0.0


class WorkerProcess:
    """One worker process and the parent's end of its socket."""

    def __init__(self, handler: str, init: str | None) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "openrs.procpool.child", str(child.fileno()), handler, init or "-"]
        if threading.current_thread() is threading.main_thread():
            cmd.append("--pdeathsig")  # only safe when the spawning thread lives as long as the process
        self.proc = subprocess.Popen(
            cmd, pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        child.close()
        parent.setblocking(False)
        self.sock = parent
        self.decoder, self.outbox = Decoder(), Outbox()  # replies coming in, tasks not yet (all) written
        self.ready = False
        self.alive = True  # False once killed
        self.writable = True  # False once a write found the socket broken
        self.last_key: Any = None  # affinity key of the last task, to keep a group on one worker
        self.inflight: deque[int] = deque()  # tasks queued, in order; the first is running (or being sent)
        self.started = self.deadline = 0.0  # when the running task started (as seen here), and its limit

    def flush(self) -> None:
        """Write what the socket takes now. A broken socket means a dead worker: stop writing and leave it to
        the read side, which takes any replies still buffered before it sees the end."""
        try:
            self.outbox.flush(self.sock)
        except OSError:
            self.outbox.clear()
            self.writable = False

    def kill(self) -> None:
        self.alive = False
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except Exception:
            pass
        self.outbox.clear()
        try:
            self.sock.close()
        except Exception:
            pass


class PendingTasks:
    """Task indices not yet sent: first-in first-out, or the oldest one with a given affinity key."""

    def __init__(self, keys: list[Any]) -> None:
        self.keys = keys
        self.order: deque[int] = deque(range(len(keys)))
        self.by_key: dict[Any, deque[int]] = {}
        for i, k in enumerate(keys):
            if k is not None:
                self.by_key.setdefault(k, deque()).append(i)
        self.taken: set[int] = set()

    def __bool__(self) -> bool:
        return len(self.taken) < len(self.keys)

    def pop(self, key: Any = None) -> int:
        same = self.by_key.get(key) if key is not None else None
        while same:
            i = same.popleft()
            if i not in self.taken:
                self.taken.add(i)
                return i
        while True:
            i = self.order.popleft()
            if i not in self.taken:
                self.taken.add(i)
                return i

    def push_back(self, i: int) -> None:
        self.taken.discard(i)
        self.order.appendleft(i)
        if self.keys[i] is not None:
            self.by_key.setdefault(self.keys[i], deque()).appendleft(i)
