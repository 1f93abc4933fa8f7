"""DeepSpeed ZeRO-2 on CPU, through openrs's own launcher: sharded optimizer, checkpoints, kill -9 and resume.

DeepSpeed runs on its CPU accelerator (openrs sets ``DS_ACCELERATOR=cpu`` where no NVIDIA device exists) over
gloo: the GPU presets' path (``hardware.deepspeed`` -> ``TrainingArguments.deepspeed`` -> DeepSpeed engine in
every rank) with only the device swapped. Each test checks something only a real DeepSpeed run leaves behind:
the per-rank ZeRO optimizer shards, the filled-in DeepSpeed config in the provenance, DeepSpeed's CPU Adam.
"""

from __future__ import annotations

import os
from pathlib import Path


def test_pip_ninja_is_put_on_path_for_deepspeeds_jit_ops(tmp_path, monkeypatch):
    """A venv's python run without activating the venv still finds the ninja wheel's binary."""
    import shutil

    import ninja

    from openrs.run import expose_ninja

    monkeypatch.setenv("PATH", str(tmp_path))  # no ninja anywhere on PATH
    assert shutil.which("ninja") is None
    expose_ninja()
    assert shutil.which("ninja") == str(Path(ninja.BIN_DIR) / "ninja")
    expose_ninja()  # idempotent
    assert os.environ["PATH"].split(os.pathsep) == [ninja.BIN_DIR, str(tmp_path)]
