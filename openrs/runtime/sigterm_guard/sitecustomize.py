"""Keeps SIGTERM ignored in every Python process of a vLLM server that openrs starts (openrs.runtime.vllm_server).

SLURM sends SIGTERM to every process of a job it preempts or cancels; the launcher then lets the ranks finish their
step and checkpoint, and their weight sync and generation still need the server. A SIG_IGN set before ``exec`` does
not last: vLLM installs its own SIGTERM handlers (its CLI, uvicorn's loop, the engine core, the worker), and
blocking the signal does not last either (CPython's multiprocessing resource tracker unblocks it in vLLM's main
thread before the engine processes are spawned).

This directory is put first on the server's PYTHONPATH only. Python imports ``sitecustomize`` at start-up in every
interpreter, the engine processes vLLM spawns included (they inherit PYTHONPATH), so this runs before vLLM's code:
SIGTERM is ignored and a later attempt to handle it installs SIG_IGN instead. SIGINT still shuts the server down
(the launcher's stop), and SIGKILL always ends it. Each process also dies with its parent (PR_SET_PDEATHSIG): vLLM's
engine processes would otherwise outlive a server killed by SIGKILL and hold their memory. A ``sitecustomize``
found further along the path still runs.
"""

import importlib.machinery
import importlib.util
import os
import signal
import sys

_install = signal.signal


def _keep_sigterm_ignored(signalnum, handler):
    return _install(signalnum, signal.SIG_IGN if signalnum == signal.SIGTERM else handler)


_install(signal.SIGTERM, signal.SIG_IGN)
signal.signal = _keep_sigterm_ignored

if sys.platform.startswith("linux"):
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, as openrs.procpool.procs.die_with_parent
        pass


def _chain() -> None:
    """Run the next ``sitecustomize`` on the path, as Python would have without this one."""
    here = os.path.dirname(os.path.abspath(__file__))
    others = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_chain()
