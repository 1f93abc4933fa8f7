"""Entry point of one verifier worker process: `python -m openrs.procpool.child FD HANDLER [INIT] [--pdeathsig]`.

Reads `(task_id, payload)` from the socket FD, answers `(task_id, ok, value)`, until the socket closes (framing:
`openrs.procpool.wire`). Started by `openrs.procpool.pool` as a fresh interpreter, so nothing of the trainer
(CUDA, threads, `__main__`) is copied.
"""

from __future__ import annotations

import importlib
import socket
import sys
from collections.abc import Callable
from typing import Any

from openrs.procpool import wire as _wire
from openrs.procpool.procs import die_with_parent, ignore_stop_signals


def resolve(path: str) -> Callable[..., Any]:
    """`"module:function"` -> the function."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def serve(sock: socket.socket, handler: Callable[[Any], Any]) -> None:
    _wire.send(sock, _wire.READY)
    while True:
        try:
            task_id, payload = _wire.recv(sock)
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            reply = _wire.encode((task_id, True, handler(payload)))
        except Exception as exc:  # the handler raised, or its value does not pickle: a failed task
            reply = _wire.encode((task_id, False, repr(exc)))
        try:
            sock.sendall(reply)
        except OSError:
            return


def main(argv: list[str]) -> None:
    fd, handler, init = int(argv[0]), argv[1], (argv[2] if len(argv) > 2 and argv[2] != "-" else None)
    if "--pdeathsig" in argv:  # tied to its parent: it dies with it, and leaves TERM/USR2 (SLURM's) to the launcher
        die_with_parent()
        ignore_stop_signals()
    if init:
        resolve(init)()
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    serve(sock, resolve(handler))


if __name__ == "__main__":
    main(sys.argv[1:])
