"""A process pool whose per-task time limit holds for any task and any payload: rewards and evaluate both use it.

`KillablePool` (openrs.procpool.pool) runs `"module:function"` handlers in fresh worker interpreters
(openrs.procpool.child) over sockets (openrs.procpool.wire), killing and replacing a worker whose task overruns.
``procs.py`` is the child-process plumbing the pool, the launcher and the vLLM server share (die with the parent,
leave stop signals to the launcher, a job's share of the cores).
"""

from openrs.procpool.pool import KillablePool
from openrs.procpool.workers import Outcome
