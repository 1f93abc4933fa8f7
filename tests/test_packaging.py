"""The wheel a user installs is the whole package: built from the checkout, installed alone (with its declared
dependencies) into a new virtual environment, and used from another directory, it imports every module of the
checkout, finds its configs, trains, evaluates and dry-runs the GPU check.

Nothing of the checkout is importable there (no editable install, no PYTHONPATH, a working directory outside it),
so a sub-package the wheel lacks fails here as it would for a user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "eval" / "tiny_math.jsonl"
pytestmark = pytest.mark.slow


def checkout_modules() -> list[str]:
    modules = []
    for path in sorted((REPO / "openrs").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] != "__main__":
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources, as from an sdist: a stale build/ of the checkout cannot leak into it."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("openrs", "conf", "hydra_plugins"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
        timeout=300,
        cwd=out,
    )
    return next(out.glob("openrs-*.whl"))


@pytest.fixture(scope="module")
def venv_python(wheel, tmp_path_factory) -> Path:
    """A new venv with this torch (pip takes the same build) and the wheel with its declared dependencies."""
    import torch

    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"torch=={torch.__version__.split('+')[0]}"], check=True, timeout=900)
    subprocess.run([*pip, str(wheel)], check=True, timeout=1800)
    return python


@pytest.fixture
def outside(tmp_path) -> dict:
    """Run from a directory outside the checkout, with nothing of it on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    return {"cwd": tmp_path, "env": env, "capture_output": True, "text": True}


def test_the_wheel_holds_every_module_and_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [
        str(p.relative_to(REPO)) for p in (REPO / "openrs").rglob("*.py") if str(p.relative_to(REPO)) not in names
    ]
    missing += [
        f"conf/{p.relative_to(REPO / 'conf')}"
        for p in (REPO / "conf").rglob("*")
        if p.suffix in (".yaml", ".json") and f"openrs/conf/{p.relative_to(REPO / 'conf')}" not in names
    ]
    assert missing == []
    assert "hydra_plugins/openrs_launcher/slurm_launcher.py" in names


def test_every_module_of_the_checkout_imports_from_the_installed_wheel(venv_python, outside):
    probe = (
        "import importlib, sys\nfor name in sys.argv[1:]:\n    print(name, importlib.import_module(name).__file__)\n"
    )
    out = subprocess.run([str(venv_python), "-c", probe, *checkout_modules()], timeout=600, **outside)
    assert out.returncode == 0, out.stderr[-3000:]
    files = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    site = str(venv_python.parent.parent)
    assert sorted(files) == sorted(checkout_modules())
    assert [f for f in files.values() if not f.startswith(site)] == []


def test_the_installed_package_trains_evaluates_and_dry_runs_the_gpu_check(venv_python, outside):
    cwd = outside["cwd"]
    train = subprocess.run(
        [str(venv_python), "-m", "openrs.train", "experiment=smoke", "grpo.max_steps=4", "hydra.run.dir=run"],
        timeout=900,
        **outside,
    )
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-3000:]
    assert (cwd / "run" / "final" / "config.json").is_file() and "openrs: done, 4 steps" in train.stdout

    shutil.copy(FIXTURE, cwd / "problems.jsonl")
    quick = ["benchmarks=[aime24]", "benchmark_paths.aime24=problems.jsonl", "limit=2", "max_new_tokens=6"]
    evaluate = subprocess.run(
        [str(venv_python), "-m", "openrs.evaluate", "run=run", "checkpoints=final", *quick], timeout=900, **outside
    )
    assert evaluate.returncode == 0, evaluate.stdout[-2000:] + evaluate.stderr[-3000:]
    assert (cwd / "run" / "eval" / "final" / "results.json").is_file()

    dry = subprocess.run([str(venv_python), "-m", "openrs.gpu_check", "--dry-run"], timeout=900, **outside)
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-3000:]
    assert "dry run: ok" in dry.stdout


def test_installed_entry_point_composes_the_paper_preset(venv_python, outside):
    result = subprocess.run(
        [str(venv_python), "-m", "openrs.train", "--cfg", "job", "experiment=rs3"], timeout=300, **outside
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "experiment: rs3" in result.stdout and "deepspeed/zero2.json" in result.stdout
    probe = (
        "import openrs.config as c, openrs.training.grpo_config as g; "
        "cfg = c.to_run_config(c.compose(['experiment=rs3'])); p = g.deepspeed_path(cfg); "
        "print(c.CONF_DIR, p, p.is_file())"
    )
    out = subprocess.run([str(venv_python), "-c", probe], timeout=300, **outside)
    assert out.returncode == 0, out.stderr[-3000:]
    conf_dir, ds_path, exists = out.stdout.split()
    site = str(venv_python.parent.parent)
    assert conf_dir.startswith(site) and ds_path.startswith(site) and exists == "True"
