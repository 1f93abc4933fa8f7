"""What DeepSpeed needs to JIT-compile its C++ ops here: a ``ninja`` binary on PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


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
