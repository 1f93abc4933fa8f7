"""What DeepSpeed needs to JIT-compile its C++ ops: a ``ninja`` binary on PATH, a build folder of this
environment's own, and no lock left there by a killed build."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path

import psutil

from openrs.config import RunConfig
from openrs.errors import RunError
from openrs.models.cache import cache_root
from openrs.training.grpo_config import offloads_optimizer


def ninja_dir() -> str | None:
    """Where a ``ninja`` binary is: on PATH, else where the ``ninja`` wheel put it; None if nowhere."""
    on_path = shutil.which("ninja")
    if on_path:
        return str(Path(on_path).parent)
    try:
        import ninja  # a DeepSpeed dependency; the wheel installs the binary beside the interpreter
    except ImportError:
        return None
    return ninja.BIN_DIR if shutil.which("ninja", path=ninja.BIN_DIR) else None


def expose_ninja() -> None:
    """Put the ``ninja`` wheel's binary on PATH if PATH has none, so DeepSpeed can JIT-compile its C++ ops.

    DeepSpeed builds CPU Adam (optimizer offload) and, on its CPU accelerator, a shared-memory comm op that
    it loads at every start, through torch.utils.cpp_extension, which runs ``ninja`` from PATH even to load
    a cached build. The wheel's binary sits in the venv's bin dir, which is not on PATH when the venv's
    python is run directly (``.venv/bin/python -m ...``, as ``make test`` does); DeepSpeed then fails with
    "Unable to JIT load the deepspeed_shm_comm op due to ninja not being installed".
    """
    found = ninja_dir()
    path = os.environ.get("PATH", "")
    if found and found not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([found, path]) if path else found


def extensions_dir() -> Path:
    """Where torch builds DeepSpeed's JIT ops for this environment: $TORCH_EXTENSIONS_DIR if set, else a folder
    per interpreter prefix and torch version under openrs's cache ($OPENRS_CACHE/torch_extensions).

    torch's own default (~/.cache/torch_extensions/py311_cpu) is shared by every venv of a user: two venvs with
    different torch builds rebuild over each other, and a build killed half-way in one leaves a lock the other
    waits on forever.
    """
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return Path(os.environ["TORCH_EXTENSIONS_DIR"])
    import torch

    key = hashlib.sha256(f"{sys.prefix}|{torch.__version__}".encode()).hexdigest()[:12]
    return cache_root() / "torch_extensions" / key


def _builds_running_in(folder: Path) -> bool:
    """Whether any process (ninja, the compiler) works in ``folder``, as a JIT build does."""
    for proc in psutil.process_iter():
        try:
            cwd = proc.cwd()
        except (psutil.Error, OSError):
            continue
        if Path(cwd) == folder:
            return True
    return False


def clear_stale_build_locks(root: Path, min_age_s: float = 120.0) -> list[Path]:
    """Remove the ``lock`` files that builds killed half-way left under ``root``; return them.

    torch.utils.cpp_extension marks a build in progress by a ``lock`` file (FileBaton) and every later load waits
    for it to go, with no timeout; a build killed by a preemption or a test's timeout leaves it behind, and each
    run after that hangs in DeepSpeed's initialisation. A lock is stale when it is older than ``min_age_s`` and
    no process works in its folder (ninja and the compiler run there while a build lasts).
    """
    removed = []
    for lock in root.glob("*/lock"):
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            continue
        if age >= min_age_s and not _builds_running_in(lock.parent.resolve()):
            lock.unlink(missing_ok=True)
            print(f"openrs: removed a stale build lock left by a killed build: {lock}", file=sys.stderr)
            removed.append(lock)
    return removed


def prepare_jit_ops() -> None:
    """Everything DeepSpeed's JIT ops need before it initialises: ninja on PATH, this environment's build folder,
    no stale locks in it."""
    expose_ninja()
    root = extensions_dir()
    os.environ["TORCH_EXTENSIONS_DIR"] = str(root)
    if root.is_dir():
        clear_stale_build_locks(root)


def cpu_adam_problem() -> str | None:
    """What stops DeepSpeed's CPU Adam op (ZeRO optimizer offload) from loading on this CUDA machine, or None.

    Unless the op was built into DeepSpeed's install (``DS_BUILD_CPU_ADAM=1``) or an earlier run here built it,
    DeepSpeed JIT-compiles it when the optimizer is created, minutes into a run. On CUDA that build needs what
    DeepSpeed's op builder checks: CUDA_HOME with an nvcc whose version matches torch's CUDA, ninja, a C++ compiler
    and the Python headers. Each missing piece is named.
    """
    try:
        from deepspeed.git_version_info import installed_ops
        from deepspeed.ops.op_builder.builder import assert_no_cuda_mismatch
    except ImportError:
        return "DeepSpeed is not installed (pip install -e '.[gpu]' -c constraints.txt)"
    if installed_ops.get("cpu_adam") or any(extensions_dir().glob("cpu_adam/*.so")):
        return None
    missing = []
    try:
        assert_no_cuda_mismatch("cpu_adam")
    except Exception as exc:  # noqa: BLE001 - DeepSpeed's MissingCUDAException / CUDAMismatchException and kin
        missing.append(" ".join(str(exc).replace(">-", "").split()))
    if ninja_dir() is None:
        missing.append("no ninja (pip install ninja)")
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        missing.append(f"no C++ compiler ({compiler} is not on PATH)")
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.is_file():
        missing.append(f"no Python headers ({headers}; install python3-dev)")
    return "; ".join(missing) or None


def require_cpu_adam(cfg: RunConfig) -> None:
    """Optimizer offload on GPUs needs DeepSpeed's CPU Adam op: refuse before any model loads if it cannot load."""
    if cfg.hardware.use_cpu or not offloads_optimizer(cfg):
        return
    problem = cpu_adam_problem()
    if problem:
        raise RunError(
            f"hardware.deepspeed={cfg.hardware.deepspeed} offloads the optimizer, which needs DeepSpeed's CPU Adam op, "
            f"and it can neither load prebuilt nor build here: {problem}. Prebuild it where it can: "
            "DS_BUILD_CPU_ADAM=1 pip install deepspeed==0.19.8 --no-build-isolation (README: First GPU run), or keep "
            "the optimizer on the GPU: hardware.deepspeed=deepspeed/zero2.json"
        )
