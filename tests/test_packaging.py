"""A non-editable install carries its configs: the wheel holds conf/ as openrs/conf, and the entry point finds it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """openrs built as a wheel and installed (no deps) into a plain directory, away from the checkout."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True, timeout=300, cwd=out,
    )  # fmt: skip
    wheel = next(out.glob("openrs-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for conf in REPO.joinpath("conf").rglob("*"):
        if conf.suffix in (".yaml", ".json"):
            assert f"openrs/conf/{conf.relative_to(REPO / 'conf')}" in names, f"{conf} is not in the wheel"
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=300)  # fmt: skip
    return target


def test_installed_entry_point_composes_the_paper_preset(installed, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(installed))
    result = subprocess.run(
        [sys.executable, "-m", "openrs.train", "--cfg", "job", "experiment=rs3"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "experiment: rs3" in result.stdout and "deepspeed/zero2.json" in result.stdout
    probe = (
        "import openrs.config as c, openrs.grpo_config as g; "
        "cfg = c.to_run_config(c.compose(['experiment=rs3'])); p = g.deepspeed_path(cfg); "
        "print(c.CONF_DIR, p, p.is_file())"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    conf_dir, ds_path, exists = out.stdout.split()
    assert conf_dir.startswith(str(installed)) and ds_path.startswith(str(installed)) and exists == "True"
